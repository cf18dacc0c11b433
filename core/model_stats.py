"""Model statistics, one function for every caller: parameters, sizes, sparsity, layer counts and FLOPs.

Conventions follow the paper ("Shrinking Bigfoot", Tables 1-2): ``size_mb`` is the size of the weights as the
model runs - parameters x 4 bytes / 1e6 for an fp32 model (the paper's 1262 MB for 315 M parameters, whatever
dtype a file stores), and the bytes of its tensors for an int8 or half-precision model (the paper's int8 model:
354 MB).  Beside it ``memory_mb`` (bytes of the tensors held in memory).  FLOPs come from ``core.model_info``.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from core.model_info import model_info

log = logging.getLogger(__name__)


def _is_dynamic_qlinear(m: nn.Module) -> bool:
    import torch.ao.nn.quantized.dynamic as nnqd

    return isinstance(m, nnqd.Linear)


def _is_static_qlinear(m: nn.Module) -> bool:
    import torch.ao.nn.quantized as nnq

    return isinstance(m, nnq.Linear) and not _is_dynamic_qlinear(m)


def packed_weight_bias(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(quantized weight, bias) of a quantized Linear (dynamic or static)."""
    w, b = m._weight_bias()
    return w, b


def iter_weight_tensors(model: nn.Module) -> Iterable[tuple[str, torch.Tensor]]:
    """(name, tensor) of every learned weight, quantized Linear weights unpacked (int8 tensors).

    Parametrized tensors (the weight-normed positional conv) count as their stored originals, which is what
    ``parameters()`` and the saved file hold.
    """
    seen: set[int] = set()
    for mname, m in model.named_modules():
        if hasattr(m, "footprint_weights"):  # int8 weights a compiled graph holds as buffers (int8-inductor)
            for name, w in m.footprint_weights():
                yield f"{mname}.{name}", w
        if _is_dynamic_qlinear(m) or _is_static_qlinear(m):
            w, b = packed_weight_bias(m)
            yield f"{mname}.weight", w
            if b is not None:
                yield f"{mname}.bias", b
    for name, p in model.named_parameters():
        if id(p) not in seen:
            seen.add(id(p))
            yield name, p.detach()


def count_params(model: nn.Module) -> int:
    return sum(t.numel() for _, t in iter_weight_tensors(model))


def memory_bytes(model: nn.Module) -> int:
    """Bytes of the weights held in memory: int8 for quantized Linear weights (+ scales), float elsewhere."""
    total = 0
    for _, t in iter_weight_tensors(model):
        if t.is_quantized:
            total += t.numel() * t.element_size()
            if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                total += t.q_per_channel_scales().numel() * 8 + t.q_per_channel_zero_points().numel() * 8
            else:
                total += 16
        else:
            total += _tensor_nbytes(t)
    counted = {id(b) for m in model.modules() if hasattr(m, "footprint_weights") for b in m.buffers()}
    for _, b in model.named_buffers():
        if id(b) not in counted:  # listed by footprint_weights above
            total += _tensor_nbytes(b)
    return total


def is_plain_fp32(model: nn.Module) -> bool:
    """Every weight a plain fp32 tensor (no int8, half precision or tensor subclass): its size is params x 4."""
    for _, t in iter_weight_tensors(model):
        if t.is_quantized or (t.is_floating_point() and t.dtype != torch.float32):
            return False
        if type(t) is not torch.Tensor and type(t) is not nn.Parameter:
            return False
    return True


def _tensor_nbytes(t: torch.Tensor) -> int:
    # torchao's tensor subclasses report their logical shape; their packed data is smaller (weight-only int8).
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None and type(t) is not torch.Tensor and type(t) is not nn.Parameter:
        try:
            names, _ = t.__tensor_flatten__()
            return sum(_tensor_nbytes(getattr(t, n)) for n in names)
        except Exception as exc:  # noqa: BLE001 - fall back to the logical size
            log.debug("packed size of %s unknown (%s); counting its logical size", type(t).__name__, exc)
    return t.numel() * t.element_size()


def zero_fraction(model: nn.Module) -> tuple[float, int, int]:
    """(sparsity, zeros, total) over every weight (quantized weights: zero integer value at zero point)."""
    zeros = total = 0
    for _, t in iter_weight_tensors(model):
        if t.is_quantized:
            q = t.int_repr()
            zp = (t.q_per_channel_zero_points().view(-1, *([1] * (q.dim() - 1)))
                  if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric) else t.q_zero_point())
            zeros += int((q == zp).sum())
        else:
            zeros += int((t == 0).sum())
        total += t.numel()
    return (zeros / total if total else 0.0), zeros, total


def layer_counts(model: nn.Module) -> tuple[int, int]:
    """(conv layers, transformer layers); max-pooling stand-ins are not conv layers."""
    w2v = getattr(model, "wav2vec2", model)
    conv = 0
    for block in w2v.feature_extractor.conv_layers:
        if any(isinstance(m, nn.Conv1d) for m in block.modules()):
            conv += 1
    return conv, len(w2v.encoder.layers)


def compute_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def model_stats(model: nn.Module) -> dict[str, Any]:
    """Params, sizes (paper MB and in-memory MB), sparsity, layer counts, FLOPs (when the info module is there)."""
    params = count_params(model)
    sparsity, zeros, _ = zero_fraction(model)
    conv, layers = layer_counts(model)
    memory = memory_bytes(model)
    size = params * 4 if is_plain_fp32(model) else memory
    out: dict[str, Any] = {"params": params, "size_mb": round(size / 1e6, 6),
                           "memory_mb": round(memory / 1e6, 6), "sparsity": round(sparsity, 6),
                           "zero_weights": zeros, "conv_layers": conv, "transformer_layers": layers}
    try:
        mi = model_info(model)
        out.update(flops_per_s=mi.total_flops_per_s, conv_flops_per_s=mi.conv_flops_per_s,
                   transformer_flops_per_s=mi.transformer_flops_per_s, flops_utterance_s=mi.utterance_s)
    except Exception as exc:  # noqa: BLE001 - FLOPs are extra; a model the counter cannot read still loads
        log.debug("FLOPs not computed: %s", exc)
    return out
