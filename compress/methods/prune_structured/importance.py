"""How much each head, feed-forward neuron and conv channel contributes, measured on calibration audio.

Criterion (activation-based, as Minitron's width pruning, Muralidharan et al. 2024, which found it the best of
the cheap criteria before distillation): the mean size of what a unit *adds* to the next computation, over every
frame of the calibration utterances (forward passes only: a Taylor score would need a gradient, and the KD loss
has none at the teacher itself)::

    head h of layer l      E || W_out[:, h] o_h ||                  (its share of the attention output)
    neuron j of layer l    E |a_j| * || W_out[:, j] ||              (its share of the feed-forward output)
    channel c of conv i    E |a_c| * || W_{i+1}[:, c, :] ||         (its share of the next conv's input)

Heads and neurons of one layer add to the same residual stream, so their scores are comparable; across layers
they are divided by the layer's mean residual norm E ||x_l||, so a unit is judged against what it is added to
(the residual of a pre-LN transformer grows with depth).  Utterances run one at a time: no padding to mask.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class Importance:
    heads: list[torch.Tensor]  # per layer: (heads,) residual-normalised contribution
    ffn: list[torch.Tensor]  # per layer: (intermediate,)
    conv: dict[int, torch.Tensor]  # conv layer -> (channels,)
    frames: int  # calibration frames seen


class _Mean:
    """A running mean of per-unit statistics (summed over frames, divided by the frame count)."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, per_frame: torch.Tensor) -> None:  # (frames, units)
        s = per_frame.double().sum(0)
        self.total = s if self.total is None else self.total + s
        self.count += per_frame.shape[0]

    def value(self) -> torch.Tensor:
        return (self.total / max(1, self.count)).float()


def _head_hook(attn: nn.Module, acc: _Mean):
    w = attn.out_proj.weight  # (hidden, heads*head_dim)

    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        o = args[0].reshape(-1, w.shape[1])  # (frames, heads*head_dim)
        n_heads = w.shape[1] // attn.head_dim
        oh = o.view(-1, n_heads, attn.head_dim)
        contrib = torch.einsum("fhd,ehd->fhe", oh, w.view(w.shape[0], n_heads, attn.head_dim))
        acc.add(contrib.norm(dim=-1))

    return hook


def _ffn_hook(dense: nn.Linear, acc: _Mean):
    col_norm = dense.weight.norm(dim=0)  # (intermediate,)

    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        acc.add(args[0].reshape(-1, dense.in_features).abs() * col_norm)

    return hook


def _residual_hook(acc: _Mean):
    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...], kwargs: dict) -> None:
        x = args[0] if args else kwargs["hidden_states"]
        acc.add(x.reshape(-1, x.shape[-1]).norm(dim=-1, keepdim=True))

    return hook


def _conv_hook(next_weight: torch.Tensor, acc: _Mean):
    in_norm = next_weight.transpose(0, 1).reshape(next_weight.shape[1], -1).norm(dim=1)  # (channels,)

    def hook(_m: nn.Module, _args: tuple, out: torch.Tensor) -> None:  # out: (batch, channels, time)
        acc.add(out.transpose(1, 2).reshape(-1, out.shape[1]).abs() * in_norm)

    return hook


@torch.no_grad()
def measure_importance(model: nn.Module, audios: Sequence[np.ndarray], do_normalize: bool,
                       conv_layers: Sequence[int] = ()) -> Importance:
    """Scores of every head and feed-forward neuron, and of the channels of ``conv_layers`` (each must feed
    another conv layer), from forward passes of ``model`` (eval, fp32) over ``audios``."""
    from tqdm import tqdm

    from core.inference import pad_batch

    model.eval()
    layers = list(model.wav2vec2.encoder.layers)
    convs = model.wav2vec2.feature_extractor.conv_layers
    heads, ffn, resid = ([_Mean() for _ in layers] for _ in range(3))
    conv_acc = {i: _Mean() for i in conv_layers}
    handles = []
    for layer, h, f, r in zip(layers, heads, ffn, resid):
        handles.append(layer.attention.out_proj.register_forward_pre_hook(_head_hook(layer.attention, h)))
        handles.append(layer.feed_forward.output_dense.register_forward_pre_hook(
            _ffn_hook(layer.feed_forward.output_dense, f)))
        handles.append(layer.register_forward_pre_hook(_residual_hook(r), with_kwargs=True))
    for i, acc in conv_acc.items():
        handles.append(convs[i].register_forward_hook(_conv_hook(convs[i + 1].conv.weight, acc)))
    frames = 0
    try:
        for audio in tqdm(audios, desc="importance", unit="utt", leave=False):
            x, _ = pad_batch([audio], do_normalize)
            logits = model(torch.from_numpy(x)).logits
            frames += logits.shape[1]
    finally:
        for hd in handles:
            hd.remove()
    scale = [r.value().clamp_min(1e-12) for r in resid]
    return Importance(heads=[h.value() / s for h, s in zip(heads, scale)],
                      ffn=[f.value() / s for f, s in zip(ffn, scale)],
                      conv={i: acc.value() for i, acc in conv_acc.items()}, frames=frames)
