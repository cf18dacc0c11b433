"""Saving and loading variants: a Hugging Face directory plus ``variant.json``.

Two storages, chosen by what the model is:

``hf``
    A plain ``Wav2Vec2ForCTC`` (baseline, distilled students, fp16/bf16, pruned with dense storage):
    ``save_pretrained`` output (``model.safetensors``, ``config.json``, feature-extractor and tokenizer files,
    via ``compress.model_io.hf.save_model_dir``).  Any Hugging Face code loads it.  Weights may be stored in
    fp16 (``storage_dtype``) and are cast back to the compute dtype on load.

``tensors``
    Models a plain ``from_pretrained`` would get wrong: int8-quantized Linears, the max-pool conv stack, sparse
    storage.  ``config.json`` and the processor files as above, but the weights go to ``variant.safetensors``
    (no ``model.safetensors``, so ``from_pretrained`` fails loudly instead of loading random layers).  Keys:

    * ``<param>``: a dense tensor, as in the model's state dict;
    * ``<param>::bitmask`` (uint8, ``numpy.packbits`` of ``!= 0``) + ``<param>::values`` (the non-zeros):
      a pruned tensor, used when it is smaller than dense (zeros > 1/32 of the tensor for fp32);
    * ``<linear>::qweight`` (int8), ``::wscale`` (float64), ``::wzp`` (int64), ``::bias``: an int8 Linear.

    The loader builds the module structure from ``config.json`` and ``variant.json`` (max-pool layers,
    quantized Linears), then fills in the tensors.  safetensors holds no code: nothing is unpickled.

``size_bytes`` in ``variant.json`` = bytes of the weight file(s) on disk (the honest size of an int8 or sparse
model); ``memory_mb`` = bytes of the tensors held in memory once loaded.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import FootprintError
from core.model_stats import model_stats
from compress.methods.base import dir_weights_hash, versions, weight_files, weights_bytes_on_disk
from compress.methods.registry import resolve_stage
from compress.model_io.hf import load_model_dir, make_processor, save_model_dir

log = logging.getLogger(__name__)

VARIANT_JSON = "variant.json"
TENSORS_FILE = "variant.safetensors"
FORMAT = "w2v-footprint/variant-1"


# ----------------------------------------------------------------------------------------------- helpers
def _custom_structure(model: nn.Module) -> bool:
    """A structure Hugging Face's from_pretrained cannot build from the config (max-pool layers, pruned heads or
    feed-forward sizes per layer): stored as tensors, rebuilt by :func:`build_skeleton`."""
    from compress.methods.prune_structured.surgery import has_pruned_structure

    return bool(getattr(model.config, "maxpool_layers", None)) or has_pruned_structure(model.config)


def choose_storage(model: nn.Module, sparse: bool) -> str:
    from compress.methods.quantize import quantized_modules

    if sparse or quantized_modules(model) or _custom_structure(model):
        return "tensors"
    return "hf"


def _sparse_worthwhile(t: torch.Tensor) -> bool:
    if not t.is_floating_point() or t.numel() < 64:
        return False
    zeros = int((t == 0).sum())
    # bitmask costs numel/8 bytes; each zero saves element_size bytes
    return zeros * t.element_size() > t.numel() / 8 + 64


def encode_tensors(model: nn.Module, sparse: bool, storage_dtype: torch.dtype | None
                   ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors the ``tensors`` storage writes, and the layout of the quantized Linears."""
    from compress.methods.quantize import export_quantized, quantized_modules

    qtensors, layout = export_quantized(model)
    qnames = tuple(f"{n}." for n in quantized_modules(model))
    out: dict[str, torch.Tensor] = dict(qtensors)
    for name, t in model.state_dict().items():
        if not isinstance(t, torch.Tensor) or (qnames and name.startswith(qnames)):
            continue
        t = t.detach().cpu()
        if storage_dtype is not None and t.is_floating_point() and t.dtype == torch.float32:
            t = t.to(storage_dtype)
        if sparse and _sparse_worthwhile(t):
            nz = t != 0
            out[f"{name}::bitmask"] = torch.from_numpy(np.packbits(nz.flatten().numpy()))
            out[f"{name}::values"] = t[nz].contiguous()
        else:
            out[name] = t.contiguous()
    return out, layout


def tensors_nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def planned_size_bytes(model: nn.Module, sparse: bool = False, storage_dtype: torch.dtype | None = None) -> int:
    """Bytes of the weights as :func:`save_variant` would store them (file headers excluded)."""
    storage = choose_storage(model, sparse)
    if storage == "hf":
        sd = model.state_dict()
        return sum(t.numel() * (t.element_size() if storage_dtype is None or not t.is_floating_point()
                                else torch.empty((), dtype=storage_dtype).element_size())
                   for t in sd.values() if isinstance(t, torch.Tensor))
    tensors, _ = encode_tensors(model, sparse, storage_dtype)
    return tensors_nbytes(tensors)


# ----------------------------------------------------------------------------------------------- save
def save_variant(model: nn.Module, out_dir: str | Path, *, recipe: str, stages: list[dict[str, Any]],
                 do_normalize: bool, source: dict[str, Any] | None = None, sparse: bool = False,
                 storage_dtype: torch.dtype | None = None, extra: dict[str, Any] | None = None,
                 trained: bool = True, float_model: nn.Module | None = None,
                 reapply_on_load: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write ``model`` to ``out_dir`` (HF files + weights + ``variant.json``); returns the variant.json dict.

    ``float_model`` + ``reapply_on_load``: store ``float_model`` and re-apply those stages on load (torchao).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in weight_files(out):  # a rerun must not leave a stale weight file of the other storage beside
        old.unlink()
    stored = float_model if float_model is not None else model
    storage = choose_storage(stored, sparse)
    layout: dict[str, Any] = {}
    if storage == "hf":
        to_save = stored
        if storage_dtype is not None and storage_dtype != torch.float32:
            import copy

            to_save = copy.deepcopy(stored).to(storage_dtype)
        save_model_dir(to_save, out, do_normalize=do_normalize)
    else:
        from safetensors.torch import save_file

        tensors, layout = encode_tensors(stored, sparse, storage_dtype)
        _write_config_and_processor(stored.config, out, do_normalize)
        save_file(tensors, str(out / TENSORS_FILE), metadata={"format": FORMAT})
    stats = model_stats(model)
    size_bytes = weights_bytes_on_disk(out)
    rec: dict[str, Any] = {
        "format": FORMAT,
        "recipe": recipe,
        "stages": stages,
        "config": _merged_config(stages, extra),
        "source_model": (source or {}).get("spec"),
        "source_hash": (source or {}).get("hash"),
        "storage": storage,
        "storage_dtype": str(storage_dtype or _dtype_of(stored)).replace("torch.", ""),
        "compute_dtype": str(_dtype_of(model)).replace("torch.", ""),
        "do_normalize": bool(do_normalize),
        "trained": bool(trained),
        "calibration_data": getattr(model, "_footprint_calibration_data", None) or "",  # "" when not calibrated
        "size_bytes": size_bytes,
        "size_on_disk_mb": round(size_bytes / 1e6, 6),
        **stats,
        "maxpool_layers": list(getattr(model.config, "maxpool_layers", None) or []),
        "quantized_linears": layout,
        "reapply_on_load": reapply_on_load or [],
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    report = getattr(model, "pruning_report", None) or getattr(stored, "pruning_report", None)
    if report:
        rec["pruned_tensors_sparsity"] = report["pruned_tensors_sparsity"]
        rec["pruning"] = report
    if extra:
        rec.update({k: v for k, v in extra.items() if k != "config"})
    (out / VARIANT_JSON).write_text(json.dumps(rec, indent=1, default=str) + "\n")
    log.info("saved %s: %s, %d params, %.2f MB on disk, sparsity %.1f%%", out, recipe, stats["params"],
             size_bytes / 1e6, 100 * stats["sparsity"])
    return rec


def _merged_config(stages: list[dict[str, Any]], extra: dict[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for st in stages:
        merged.update(st.get("config") or {})
    if extra and isinstance(extra.get("config"), dict):
        merged.update(extra["config"])
    return merged


def _dtype_of(model: nn.Module) -> torch.dtype:
    from core.model_stats import compute_dtype

    return compute_dtype(model)


def _write_config_and_processor(config: Any, out: Path, do_normalize: bool) -> None:
    """config.json (custom fields such as ``maxpool_layers`` included) + feature-extractor/tokenizer files."""
    config.save_pretrained(str(out))
    layer_norm = getattr(config, "feat_extract_norm", "group") == "layer"
    make_processor(out, do_normalize, return_attention_mask=layer_norm).save_pretrained(str(out))


# ----------------------------------------------------------------------------------------------- load
def read_variant_json(model_dir: Path) -> dict[str, Any]:
    p = Path(model_dir) / VARIANT_JSON
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FootprintError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FootprintError(f"{p}: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise FootprintError(f"{p}: expected a JSON object, got {type(data).__name__}")
    return data


def build_skeleton(config: Any) -> nn.Module:
    """A float ``Wav2Vec2ForCTC`` with the structure ``config`` describes (max-pool layers and structurally
    pruned layers included)."""
    from transformers import Wav2Vec2ForCTC

    from compress.methods.prune_structured.surgery import has_pruned_structure, shrink_to_config

    model = Wav2Vec2ForCTC(config)
    if has_pruned_structure(config):
        shrink_to_config(model)
    if getattr(config, "maxpool_layers", None):
        from compress.methods.maxpool import replace_with_maxpool

        replace_with_maxpool(model, list(config.maxpool_layers))
    return model


def _read_do_normalize(model_dir: Path, rec: dict[str, Any]) -> bool:
    if "do_normalize" in rec:
        return bool(rec["do_normalize"])
    pp = model_dir / "preprocessor_config.json"
    if pp.exists():
        try:
            return bool(json.loads(pp.read_text()).get("do_normalize", True))
        except json.JSONDecodeError:
            pass
    return True


def load_variant_dir(model_dir: str | Path) -> tuple[nn.Module, bool, dict[str, Any]]:
    """(model in eval mode, do_normalize, variant.json dict) from a saved variant or any HF Wav2Vec2ForCTC dir."""
    d = Path(model_dir)
    if not d.is_dir():
        raise FootprintError(f"{d}: not a directory")
    rec = read_variant_json(d)
    storage = rec.get("storage", "hf")
    if storage == "hf":
        model, do_norm = _load_hf(d, rec)
    elif storage == "tensors":
        model, do_norm = _load_tensors(d, rec), _read_do_normalize(d, rec)
    else:
        raise FootprintError(f"{d / VARIANT_JSON}: unknown storage {storage!r} (hf | tensors)")
    dtype = getattr(torch, rec.get("compute_dtype", "float32"), torch.float32)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        from compress.methods.quantize import quantized_modules

        if not quantized_modules(model):
            model = model.to(dtype)
            if dtype == torch.bfloat16:
                from compress.methods.quantize import guard_bf16_grouped_conv

                guard_bf16_grouped_conv(model)  # a saved bf16 variant loaded on a CPU whose bf16 grouped conv is wrong
    for st in rec.get("reapply_on_load") or []:
        handler, cfg = resolve_stage(st["name"], st.get("config") or {})
        model = handler.apply(model, cfg)
    model.eval()
    return model, do_norm, rec


def _load_hf(d: Path, rec: dict[str, Any]) -> tuple[nn.Module, bool]:
    if not (d / "config.json").exists():
        raise FootprintError(f"{d}: no config.json (not a Hugging Face model directory)")
    if not weight_files(d):
        raise FootprintError(f"{d}: no model.safetensors or pytorch_model.bin")
    model, fe = load_model_dir(d)
    if "do_normalize" in rec:
        do_norm = bool(rec["do_normalize"])
    else:
        do_norm = bool(getattr(fe, "do_normalize", _read_do_normalize(d, rec))) if fe is not None \
            else _read_do_normalize(d, rec)
    return model, do_norm


def _load_tensors(d: Path, rec: dict[str, Any]) -> nn.Module:
    from safetensors.torch import load_file
    from transformers import Wav2Vec2Config

    from compress.methods.quantize import rebuild_quantized

    path = d / TENSORS_FILE
    if not path.exists():
        raise FootprintError(f"{path}: missing (variant.json says storage 'tensors')")
    try:
        config = Wav2Vec2Config.from_pretrained(str(d))
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors/transformers raise several types
        raise FootprintError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if rec.get("maxpool_layers"):
        config.maxpool_layers = list(rec["maxpool_layers"])
    model = build_skeleton(config)
    layout = rec.get("quantized_linears") or {}
    # float part first (into the float skeleton), then the int8 Linears replace their float stand-ins
    qprefixes = tuple(f"{n.removesuffix('.linear') if e['kind'] == 'static' else n}." for n, e in layout.items())
    state: dict[str, torch.Tensor] = {}
    for name, ref in model.state_dict().items():
        if not isinstance(ref, torch.Tensor) or (qprefixes and name.startswith(qprefixes)):
            continue
        if name in tensors:
            state[name] = tensors[name]
        elif f"{name}::bitmask" in tensors:
            bits = np.unpackbits(tensors[f"{name}::bitmask"].numpy(), count=ref.numel()).astype(bool)
            dense = torch.zeros(ref.numel(), dtype=tensors[f"{name}::values"].dtype)
            dense[torch.from_numpy(bits)] = tensors[f"{name}::values"]
            state[name] = dense.view(ref.shape)
        else:
            raise FootprintError(f"{path}: no tensor for {name}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (qprefixes and k.startswith(qprefixes))]
    if missing or unexpected:
        raise FootprintError(f"{path}: tensors do not match the model structure "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    if layout:
        rebuild_quantized(model, layout, tensors)
    return model


def source_info(spec: str, model_dir: Path | None) -> dict[str, Any]:
    return {"spec": spec, "hash": dir_weights_hash(model_dir) if model_dir else None}
