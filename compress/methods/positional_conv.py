"""The positional convolution of a compiled encoder as a channels-last conv2d with merged groups.

Why: wav2vec 2.0's positional convolution is a grouped conv1d (16 groups; kernel 128 in the paper's models, 64 in
the embedded teacher) that oneDNN runs far slower than its other convolutions: with the embedded teacher's 12
channels per group it took about as long as a fifth of the int8 encoder.  Measured on a 2-vCPU AMD EPYC (AVX512-BF16,
no AMX), 2 threads, ``torch.compile`` with dynamic shapes, batch 8 x 250 frames, fp32, 15 interleaved repeats:
conv1d 19.6 ms; the same conv as a channels-last conv2d 14.3 ms; with pairs of groups merged (24 channels each)
10.5 ms; merged in fours 14.6 ms.

What: while a compiled recipe exports its encoder (:func:`exported_channels_last`), the conv runs as a ``conv2d``
over ``(batch, channels, 1, frames)`` in channels-last memory - the layout the encoder's ``(batch, frames,
channels)`` hidden states already have, so nothing is copied - with adjacent groups merged until each has at least
:data:`MIN_GROUP_CHANNELS` channels.  The merged weight is block-diagonal (zeros between the original groups), so the
output is the same sums: equal to the conv1d's within fp32 rounding.  With frozen weights (the compiled recipes'
default) the merged weight is computed once, at compile time.  The model itself keeps its conv; only the exported
graph changes.

Lengths: oneDNN builds this conv's kernel for each input length, and on a length it has not run the call took about
as long as the conv1d (AOTInductor, same machine and batch, 70 new lengths: 22.5 ms on first sight, 12.8 ms warm;
conv1d 23.6 / 22.9 ms).  The input is therefore padded with zeros on the right to a multiple of
:data:`LENGTH_STEP` frames, plus one step, and the extra outputs are cut off: exact, as an output frame reads at
most ``padding`` frames beyond the last real one, which were zeros already.  Padded: 14.2 ms on first sight, 13.9 ms
warm.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

MIN_GROUP_CHANNELS = 16  # 12 -> 24 measured fastest (above); 64 (the paper's models) stay as they are
LENGTH_STEP = 16  # frames: the lengths the conv runs at, so that new lengths reuse oneDNN's kernels (above)


def merge_factor(channels: int, groups: int) -> int:
    """How many adjacent groups to merge: the smallest divisor of ``groups`` that gives each merged group at least
    :data:`MIN_GROUP_CHANNELS` input channels (all of them when no divisor does)."""
    per_group = channels // groups
    return next((r for r in range(1, groups + 1) if groups % r == 0 and per_group * r >= MIN_GROUP_CHANNELS), groups)


def merged_weight(weight: torch.Tensor, groups: int, merge: int) -> torch.Tensor:
    """A grouped conv1d weight ``(out, in / groups, k)`` as the ``(out, merge * in / groups, 1, k)`` conv2d weight of
    ``groups / merge`` groups: block-diagonal, each output channel reading only its own original group."""
    out, per_group, k = weight.shape
    blocks = weight.reshape(groups // merge, merge, out // groups, 1, per_group, k)  # merged, j, out, 1, in, k
    eye = torch.eye(merge, dtype=weight.dtype, device=weight.device).reshape(1, merge, 1, merge, 1, 1)  # j, j'
    return (blocks * eye).reshape(out, merge * per_group, 1, k)


def grouped_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int,
                   groups: int) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=padding, groups=groups)`` (stride and dilation 1) as a channels-last
    conv2d with merged groups, over the input padded with zeros on the right to a multiple of
    :data:`LENGTH_STEP` frames (and one step more); the extra outputs are cut off."""
    merge = merge_factor(x.shape[1], groups)
    # never zero, so the cut below is never the identity: torch.export cannot prove which it is for every length
    extra = (-x.shape[-1]) % LENGTH_STEP + LENGTH_STEP
    out = F.conv2d(F.pad(x, (0, extra))[:, :, None, :], merged_weight(weight, groups, merge), bias,
                   padding=(0, padding), groups=groups // merge)[:, :, 0, :]
    return out.narrow(-1, 0, out.shape[-1] - extra)


class _ChannelsLastGroupedConv:
    """Mixed into the positional conv's class while an encoder is exported: its convolution goes through
    :func:`grouped_conv1d` (the weight as the conv computes it, weight norm included)."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return grouped_conv1d(input, weight, bias, self.padding[0], self.groups)


def _positional_conv(encoder: nn.Module) -> nn.Conv1d | None:
    """The encoder's positional conv where it is one this module can run: grouped, stride and dilation 1, zero
    padding of one size; None otherwise (it is then exported as it is)."""
    conv = getattr(getattr(encoder, "pos_conv_embed", None), "conv", None)
    if (not isinstance(conv, nn.Conv1d) or conv.groups == 1 or conv.stride != (1,) or conv.dilation != (1,)
            or conv.padding_mode != "zeros" or isinstance(conv.padding, str)):
        return None
    return conv


@contextlib.contextmanager
def exported_channels_last(encoder: nn.Module) -> Iterator[None]:
    """While the block runs (an export), ``encoder``'s positional conv is a channels-last conv2d with merged
    groups; its class is restored afterwards."""
    conv = _positional_conv(encoder)
    if conv is None:
        yield
        return
    cls = type(conv)
    conv.__class__ = type(f"ChannelsLast{cls.__name__}", (_ChannelsLastGroupedConv, cls),
                          {"__module__": cls.__module__})
    try:
        yield
    finally:
        conv.__class__ = cls

