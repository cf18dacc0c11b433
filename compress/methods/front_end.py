"""``front-end-bf16``: the conv front end in bfloat16, channels-last (beyond the paper).

Why: on a CPU the conv front end is most of a small wav2vec 2.0's time, and int8 leaves it untouched (see
``compiled.py``).  Its convolutions are large GEMMs that bf16 kernels (AMX, AVX512-BF16; tensor cores on a GPU)
run several times faster, but only in the memory layout oneDNN prefers: a bf16 **Conv2d (1 x k) in channels-last**
is several times faster than the same conv as a bf16 Conv1d, let alone fp32 (compress/methods/README.md gives a
timing).  ``bf16-autocast`` and ``compile-bf16`` keep the Conv1d layout, which is why they gain little on the
front end.

What it does: each conv block runs as ``conv2d`` over a ``(batch, channels, 1, time)`` tensor in channels-last
memory (physically batch x time x channels), so LayerNorm over channels reads contiguous memory and no transposes
are made; GroupNorm, GELU and max-pooling (``maxpool-conv4``) run in the same layout.  The conv weights are copied
once to ``(out, in, 1, k)`` bf16 channels-last tensors; the ``Conv1d`` parameters stay as they were (fp32), so the
model's size and state dict do not change and ``model.to(torch.float32)`` (the transcriber calls it) cannot undo
the recipe.  The front end's output is cast back to the dtype of the model's weights (fp32; bf16 after the ``bf16``
recipe), so the feature projection and the transformer (fp32, bf16 or int8) see what they always saw: it chains
after anything that changes the transformer (``int8-dynamic+front-end-bf16``, ``bf16+front-end-bf16``,
``distill-L4+int8-dynamic+front-end-bf16``).  Runtime-only: nothing is saved,
it is rebuilt from the float weights wherever the recipe is named; the row's ``compute_dtype`` says
``bfloat16-front-end``.  Front-end features stay within about 1 % (relative L2) of fp32, bf16's rounding.

Windows (on CPU, layer-norm front ends): the audio is cut into windows of ``chunk_frames`` output frames (50: 1 s)
that overlap by the receptive field minus the stride (80 samples), and the conv stack runs over at most
``chunk_group`` windows per call (8; what is left in groups of 4, 2 and 1).  Every conv call then has one of four
input shapes, whatever the utterance lengths: oneDNN builds a conv primitive per input shape, so a batch of a length
it has not run before otherwise pays for building the front end's kernels again (tens of milliseconds a batch on an
AVX512 EPYC, several times the conv work), and a window's activations stay in the core's cache where a whole
batch's do not.  Exact: with no padding in the convs, a frame reads only its own receptive field, every window
starts on the frame grid (a multiple of the product of the strides), and the layer norms act per frame, so each
window's frames equal the whole batch's (``tests/test_methods_front_end.py``).  Group-norm front ends normalise
over the whole utterance and run in one call, as do traced or compiled runs and GPUs.  ``front-end-bf16-whole``
is the same recipe without windows, to compare.

``front-end-compiled``: the same windows, each group through an AOTInductor artefact (:mod:`compress.methods.
front_end_artefact`: one graph for every length, each block's LayerNorm and GELU fused into one kernel), built once
per front end and machine and loaded from the compile cache afterwards (``compile_s`` in the variant's info).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import FootprintError
from compress.methods.compile_cache import compile_available, compile_missing
from compress.methods.maxpool import MaxPoolFeatureLayer
from compress.methods.registry import register_method

log = logging.getLogger(__name__)

DTYPES = ("bfloat16", "float32")  # float32: the same layout without bf16 (to separate the two effects)


@dataclass
class FrontEndConfig:
    dtype: str = "bfloat16"
    chunk_frames: int = 50  # output frames per window (20 ms each); 0 runs the whole batch in one call
    chunk_group: int = 8  # windows per conv call at most (a power of two)
    compiled: bool = False  # the window groups through an AOTInductor artefact (front_end_artefact.py)


@dataclass(frozen=True)
class Windows:
    """How the front end cuts its input: ``frames`` output frames per window, at most ``group`` windows per call;
    output frame j reads input samples ``[j * stride, j * stride + field)``."""

    frames: int
    group: int
    field: int
    stride: int

    @property
    def samples(self) -> int:
        """The input samples of one window."""
        return self.stride * (self.frames - 1) + self.field


def _norm_kind(block: nn.Module) -> str:
    norm = getattr(block, "layer_norm", None)
    if norm is None:
        return "none"
    if isinstance(norm, nn.LayerNorm):
        return "layer"
    if isinstance(norm, nn.GroupNorm):
        return "group"
    raise FootprintError(f"front-end-bf16: unknown norm {type(norm).__name__} in the conv front end")


def _check_block(block: nn.Module) -> tuple[str, str]:
    """(kind, norm) of one front-end block, or a one-line refusal."""
    if isinstance(block, MaxPoolFeatureLayer):
        return "pool", "none"
    conv = getattr(block, "conv", None)
    if not isinstance(conv, nn.Conv1d) or conv.groups != 1 or conv.padding not in ((0,), 0):
        raise FootprintError(f"front-end-bf16: cannot run the front-end block {type(block).__name__} channels-last "
                             "(expected an ungrouped, unpadded Conv1d)")
    return "conv", _norm_kind(block)


def _geometry(blocks: nn.ModuleList) -> tuple[int, int]:
    """(receptive field, stride) of the front end in input samples."""
    field, stride = 1, 1
    for block in blocks:
        op = block.pool if isinstance(block, MaxPoolFeatureLayer) else block.conv
        kernel = op.kernel_size if isinstance(op.kernel_size, int) else op.kernel_size[0]
        step = op.stride if isinstance(op.stride, int) else op.stride[0]
        field += (kernel - 1) * stride
        stride *= step
    return field, stride


def _windows(blocks: nn.ModuleList, plan: list[tuple[str, str]], config: FrontEndConfig) -> Windows | None:
    """The windows the front end runs in, or None where windows would change the features (a group norm
    normalises over the whole utterance) or the config turns them off."""
    if config.chunk_frames <= 0 or any(norm == "group" for _, norm in plan):
        return None
    if config.chunk_group < 1 or config.chunk_group & (config.chunk_group - 1):
        raise FootprintError(f"front-end-bf16: chunk_group must be a power of two, not {config.chunk_group}")
    return Windows(config.chunk_frames, config.chunk_group, *_geometry(blocks))


def _channels_last(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A copy of the 4-d ``t`` in ``dtype`` with channels-last strides set explicitly (cast and layout in one
    copy).  ``contiguous(memory_format=...)`` leaves a tensor with one channel (the audio, the first conv's weight)
    as it is, since its size-1 dimensions make it count as both layouts; oneDNN would then run the first conv in the
    plain layout and reorder every later activation, copies that cost a large share of the front end's time."""
    n, c, h, w = t.shape
    return torch.empty_strided(t.shape, (c * h * w, 1, w * c, c), dtype=dtype, device=t.device).copy_(t)


class _ChannelsLastFrontEnd:
    """Mixed into the feature encoder's class: the blocks' forward on ``(batch, channels, 1, time)`` channels-last
    tensors of ``_footprint_front_end_dtype``; returns ``(batch, channels, frames)`` in the dtype of the model's
    weights (fp32, or bf16 after the ``bf16`` recipe) as the original did."""

    _footprint_front_end_plan: list[tuple[str, str]]
    _footprint_front_end_dtype: torch.dtype
    _footprint_front_end_cache: dict[int, tuple[tuple, torch.Tensor, torch.Tensor | None]]
    _footprint_front_end_windows: Windows | None
    _footprint_front_end_run: Any  # the compiled window groups (front-end-compiled), or None
    _footprint_front_end_run_key: tuple

    def _conv_weights(self, conv: nn.Conv1d) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The conv's weights as ``(out, in, 1, k)`` channels-last tensors of the front-end dtype, made once and
        remade only when the parameter changes (moved, cast or written): the parameters themselves stay as they
        were, so the model's size, dtype and state dict do not change and ``model.to(...)`` cannot undo this."""
        w = conv.weight
        key = (w.device, w.dtype, w.data_ptr(), w._version)
        hit = self._footprint_front_end_cache.get(id(conv))
        if hit is None or hit[0] != key:
            dtype = self._footprint_front_end_dtype
            weight = _channels_last(w.detach()[:, :, None, :], dtype)
            bias = conv.bias.detach().to(dtype) if conv.bias is not None else None
            hit = (key, weight, bias)
            self._footprint_front_end_cache[id(conv)] = hit
        return hit[1], hit[2]

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        windows = self._footprint_front_end_windows
        if (windows is None or not input_values.is_cpu or torch.jit.is_tracing()
                or torch.compiler.is_compiling()):
            return self._blocks_forward(input_values)
        return self._windowed_forward(input_values, windows)

    def _windowed_forward(self, input_values: torch.Tensor, w: Windows) -> torch.Tensor:
        """The features of ``input_values`` computed window by window, in calls of ``w.group``, 4, 2 or 1
        windows: the same ``(batch, channels, frames)`` tensor, in the same memory layout, as one call."""
        batch, length = input_values.shape
        n_frames = (length - w.field) // w.stride + 1
        if n_frames <= 0:  # shorter than one receptive field: the model's own error
            return self._blocks_forward(input_values)
        per_row = -(-n_frames // w.frames)
        window = w.samples
        padded = F.pad(input_values, (0, w.stride * (per_row * w.frames - 1) + w.field - length))
        cut = padded.unfold(1, window, w.stride * w.frames).reshape(batch * per_row, window)
        blocks = self._compiled_blocks() or self._blocks_forward
        parts, start, size = [], 0, w.group
        while start < len(cut):
            while size > len(cut) - start:
                size //= 2
            parts.append(blocks(cut[start:start + size]).transpose(1, 2))  # (n, frames, channels)
            start += size
        frames = torch.cat(parts).reshape(batch, per_row * w.frames, -1)[:, :n_frames]
        return frames.transpose(1, 2)

    def _compiled_blocks(self) -> Any:
        """The compiled window groups, while the weights they were compiled from are unchanged (a later recipe
        that writes them, pruning say, sends the front end back to the eager blocks, with one warning)."""
        run = getattr(self, "_footprint_front_end_run", None)
        if run is not None and _weights_key(self) != self._footprint_front_end_run_key:
            log.warning("front-end-compiled: the front end's weights changed after it was compiled; running it eager")
            run = self._footprint_front_end_run = None
        if run is None:
            return None
        dtype = self.conv_layers[0].conv.weight.dtype  # out in the model's dtype, as the eager blocks give
        # the artefact reads contiguous fp32 rows and checks neither: one utterance's windows are an overlapping
        # view, and a bf16 model (the bf16 recipe) hands the front end bf16 audio
        return lambda windows: run(windows.to(torch.float32).contiguous()).to(dtype)

    def _blocks_forward(self, input_values: torch.Tensor) -> torch.Tensor:
        x = _channels_last(input_values[:, None, None, :], self._footprint_front_end_dtype)
        for block, (kind, norm) in zip(self.conv_layers, self._footprint_front_end_plan):
            if kind == "pool":
                pool = block.pool
                x = F.max_pool2d(x, (1, pool.kernel_size), (1, pool.stride))
                continue
            weight, bias = self._conv_weights(block.conv)
            x = F.conv2d(x, weight, bias, (1, block.conv.stride[0]))
            if norm != "none":
                n = block.layer_norm
                # CPU kernels take bf16 input with fp32 scale (and normalise in fp32); elsewhere the dtypes match
                scale, shift = (n.weight, n.bias) if x.is_cpu else (n.weight.to(x.dtype), n.bias.to(x.dtype))
                if norm == "layer":  # over channels: the last dimension of the channels-last memory
                    x = F.layer_norm(x.permute(0, 2, 3, 1), n.normalized_shape, scale, shift, n.eps).permute(0, 3, 1, 2)
                else:
                    x = F.group_norm(x, n.num_groups, scale, shift, n.eps)
            x = block.activation(x)
        return x[:, :, 0, :].to(self.conv_layers[0].conv.weight.dtype)  # the model's dtype: fp32, or bf16 (bf16)


def _weights_key(encoder: nn.Module) -> tuple:
    """Where and at which version the front end's tensors are: changes when one is written, moved or cast."""
    return tuple((t.data_ptr(), t._version, t.dtype) for t in encoder.conv_layers.parameters())


def _compile_windows(model: nn.Module, encoder: nn.Module) -> None:
    """``front-end-compiled``: the window groups from their AOTInductor artefact, built here if none is cached; where
    that fails (no C++ compiler, a build error), one warning and the eager windows."""
    from compress.methods import aoti
    from compress.methods.front_end_artefact import compile_window_blocks

    windows = encoder._footprint_front_end_windows
    if windows is None or next(model.parameters()).device.type != "cpu":
        log.warning("front-end-compiled: compiled on CPU for layer-norm front ends only (the windows); this one runs "
                    "as front-end-bf16")
        return
    try:
        run, state, label, seconds = compile_window_blocks(encoder, encoder._footprint_front_end_plan,
                                                           encoder._footprint_front_end_dtype, windows)
    except Exception as exc:  # noqa: BLE001 - any failure (export, C++ build, load): the eager windows
        log.warning("front-end-compiled: AOTInductor artefact failed (%s: %s); running the front end eager",
                    type(exc).__name__, aoti.first_line(exc)[:300])
        model._footprint_front_end_artefact = "failed"
        return
    object.__setattr__(encoder, "_footprint_front_end_run", run)  # not a submodule: no state, no parameters
    encoder._footprint_front_end_run_key = _weights_key(encoder)
    model._footprint_front_end_artefact, model._footprint_front_end_compile_s = state, seconds
    model._footprint_front_end_compile_cache = label


def front_end_dtype(model: nn.Module) -> str | None:
    """The dtype this recipe runs ``model``'s front end in (None when it did not touch the model)."""
    return getattr(model, "_footprint_front_end", None)


@register_method("front-end-compiled", FrontEndConfig, options={"compiled": True}, runtime_only=True, compiles=True,
                 devices=("cpu",),
                 available=lambda: compile_available("cpu"), missing=compile_missing,
                 description="front-end-bf16 with its window groups compiled by AOTInductor (each block's LayerNorm "
                             "and GELU fused; one artefact for every length, cached); CPU, layer-norm front ends; "
                             "needs a C++ compiler")
@register_method("front-end-bf16-whole", FrontEndConfig, options={"chunk_frames": 0},
                 runtime_only=True,
                 description="front-end-bf16 with the whole batch in one conv call (no windows): to compare")
@register_method("front-end-bf16", FrontEndConfig, runtime_only=True,
                 description="the conv front end in bf16, channels-last (oneDNN/AMX on CPU, tensor cores on GPU), "
                             "in 1-s windows on CPU (fixed conv shapes for every length), out in the model's dtype; "
                             "the transformer as it was (fp32, bf16 or int8); nothing saved")
def apply_front_end(model: nn.Module, config: FrontEndConfig) -> nn.Module:
    if config.dtype not in DTYPES:
        raise FootprintError(f"front-end-bf16: dtype must be one of {', '.join(DTYPES)}, not {config.dtype!r}")
    if front_end_dtype(model):
        return model
    compiled = getattr(model, "_footprint_compiled", None)
    if compiled and not compiled.startswith("encoder"):  # compile-encoder leaves the front end alone
        raise FootprintError("front-end-bf16: the model is already compiled; compile and front-end-bf16 both "
                             "rewrite the front end: use one of the two")
    encoder = getattr(getattr(model, "wav2vec2", None), "feature_extractor", None)
    if encoder is None or not hasattr(encoder, "conv_layers"):
        raise FootprintError(f"front-end-bf16: expected a Wav2Vec2ForCTC model, got {type(model).__name__}")
    dtype = getattr(torch, config.dtype)
    if dtype == torch.bfloat16:
        from compress.methods.quantize import cpu_has_native_bf16

        device = next(model.parameters()).device
        if device.type == "cpu" and not cpu_has_native_bf16():
            log.warning("front-end-bf16: this CPU has no native bf16 (AVX512-BF16/AMX): slower than fp32 here")
    plan = [_check_block(block) for block in encoder.conv_layers]
    cls = type(encoder)
    encoder.__class__ = type(f"ChannelsLast{cls.__name__}", (_ChannelsLastFrontEnd, cls),
                             {"__module__": cls.__module__})
    encoder._footprint_front_end_plan = plan
    encoder._footprint_front_end_dtype = dtype
    encoder._footprint_front_end_cache = {}
    encoder._footprint_front_end_windows = _windows(encoder.conv_layers, plan, config)
    encoder._footprint_front_end_run = None
    model._footprint_front_end = config.dtype
    if config.compiled:
        _compile_windows(model, encoder)
    return model.eval()
