"""What every method shares: the :class:`Variant` a recipe produces, model statistics and source hashes.

Statistics follow the paper's conventions (``compress/model_io/info.py``): ``size_mb`` is the size of the weights as
the model runs - parameters x 4 bytes / 1e6 for an fp32 model (the paper's 1262 MB, whatever dtype the file stores),
and the bytes of its tensors for an int8 or half-precision model (the paper's int8 model: 354 MB).  Beside it,
``size_on_disk_mb`` (bytes of the stored tensors) and ``memory_mb`` (bytes of the tensors held in memory).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

# Files that hold weights in a variant directory (HF names and our own tensors file).
WEIGHT_FILE_PATTERNS = ("model.safetensors", "model-*.safetensors", "pytorch_model.bin", "pytorch_model-*.bin",
                        "variant.safetensors")


@dataclass
class Variant:
    """A model ready to run, with what the benchmark reports about it.

    ``info`` keys: params, size_mb (the weights as the model runs; params x 4 / 1e6 in fp32), size_on_disk_mb
    (bytes of the stored weights), memory_mb (bytes of the tensors in memory), sparsity (zero weights / all weights),
    conv_layers, transformer_layers, storage, compute_dtype, trained, and FLOPs when available.
    """

    model: nn.Module
    do_normalize: bool
    name: str
    recipe: str
    info: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # the directory it was loaded from, None when built in memory
    dtype: torch.dtype = torch.float32  # compute dtype: pass to bench.inference.Transcriber(dtype=...)
    device: str = "cpu"
    record: dict[str, Any] = field(default_factory=dict)  # variant.json content (or what it would be)


def sha256_files(paths: Iterable[Path]) -> str:
    """sha256 over the bytes of ``paths`` in the given order (names not included)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def weight_files(model_dir: Path) -> list[Path]:
    model_dir = Path(model_dir)
    found: dict[Path, None] = {}
    for pattern in WEIGHT_FILE_PATTERNS:
        for p in sorted(model_dir.glob(pattern)):
            found[p] = None
    return list(found)


def dir_weights_hash(model_dir: Path) -> str:
    """``sha256:<hex>`` of a model directory's weight file(s): the identity of a source model."""
    files = weight_files(model_dir)
    if not files:
        return ""
    return "sha256:" + sha256_files(files)


def weights_bytes_on_disk(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in weight_files(model_dir))


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
    for _, b in model.named_buffers():
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
        from compress.model_io.info import model_info

        mi = model_info(model)
        out.update(flops_per_s=mi.total_flops_per_s, conv_flops_per_s=mi.conv_flops_per_s,
                   transformer_flops_per_s=mi.transformer_flops_per_s, flops_utterance_s=mi.utterance_s)
    except Exception as exc:  # noqa: BLE001 - FLOPs are extra; a model the counter cannot read still loads
        log.debug("FLOPs not computed: %s", exc)
    return out


def versions() -> dict[str, str]:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}
