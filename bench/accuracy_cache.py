"""Accuracy results (WER, CER, the per-utterance hypotheses) kept across runs, so a variant's WER is computed once.

A result is reused only where everything that can change the hypotheses is the same, so the key covers:

* the variant's content: every tensor of its state dict (weights and buffers, int8 ones by their integer values,
  scales and zero points), its record (recipe, stages with their options, calibration data, the source's hash),
  its dtype and how it runs (runtime, compute dtype, quantized engine, length buckets);
* how it is run: device kind and name (the CPU model: bf16 and int8 kernels differ by ISA, and oneDNN's ISA cap
  ``ONEDNN_MAX_CPU_ISA``), intra-op threads (reduction order), batch size and padding limit, normalisation;
* the data: the manifest's content hash, the utterances in the workload (``--limit``), the ranks sharing it;
* the software: torch, transformers and numpy versions, the suite's version and a hash of its own code in
  ``core``, ``compress`` and ``bench`` (a recipe built by other code can differ; so can the inference).

Anything else (run folder, repeats, energy meter) does not change a hypothesis and stays out.  The same key, with
the heaviest batch's shape added, keeps a variant's measured memory (``kind="memory"``, bench/memory.py: the child
that measures it builds the variant a second time; a later run need not).  A hit is recorded in
the rows (``accuracy_source`` ``cache``) and meta.json, with the run the result was computed in; ``--fresh``
ignores the cache (and writes what it computes).  Folder: ``$W2V_FOOTPRINT_ACCURACY_CACHE``, else ``accuracy/``
under the suite's cache folder (``$W2V_FOOTPRINT_CACHE``, default ``~/.cache/w2v-footprint``).  One JSON file per
key, written atomically; a file that does not parse is a miss.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

CACHE_ENV = "W2V_FOOTPRINT_ACCURACY_CACHE"
CACHE_ENVS = {"accuracy": CACHE_ENV, "memory": "W2V_FOOTPRINT_MEMORY_CACHE"}
FORMAT = 1  # bump when the payload or what the key covers changes: older entries are then never found
ISA_ENVS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE")


def cache_dir(kind: str = "accuracy") -> Path:
    env = os.environ.get(CACHE_ENVS[kind])
    if env:
        return Path(env).expanduser()
    from core.data.synth.corpus import cache_root

    return cache_root() / kind


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """The suite's code that builds and runs variants and scores them: every .py file of core, compress, bench."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pkg in ("core", "compress", "bench"):
        for f in sorted((root / pkg).rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _hash_value(h: Any, value: Any) -> None:
    """Feed one state-dict value: tensors by dtype, shape and bytes (int8 ones by integer values and
    quantisation parameters); tuples and lists element by element; anything else by its type and plain value
    (never a repr with a memory address)."""
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.is_quantized:
            if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                h.update(f"{t.q_scale()}:{t.q_zero_point()}".encode())
            else:
                _hash_value(h, t.q_per_channel_scales())
                _hash_value(h, t.q_per_channel_zero_points())
            t = t.int_repr()
        if t.layout != torch.strided:
            t = t.to_dense()
        t = t.cpu().contiguous()
        if t.numel():
            h.update(t.view(-1).view(torch.uint8).numpy() if t.element_size() else b"")
    elif isinstance(value, (tuple, list)):
        h.update(f"L{len(value)}".encode())
        for v in value:
            _hash_value(h, v)
    elif value is None or isinstance(value, (bool, int, float, str, torch.dtype)):
        h.update(f"{type(value).__name__}:{value}".encode())
    else:
        h.update(f"?{type(value).__module__}.{type(value).__qualname__}".encode())


HOW_IT_RUNS = ("runtime", "compute_dtype", "quantized_engine", "length_buckets", "storage", "calibration_data")


def variant_hash(variant: Any, tr: Any) -> str:
    """Content hash of a loaded variant as the runner runs it (``tr``: its Transcriber)."""
    h = hashlib.sha256()
    record = getattr(variant, "record", None) or {}
    info = getattr(variant, "info", None) or {}
    h.update(json.dumps({"recipe": getattr(variant, "recipe", ""), "record": record,
                         "dtype": str(getattr(variant, "dtype", "")),
                         "info": {k: info.get(k) for k in HOW_IT_RUNS}}, sort_keys=True, default=str).encode())
    model = getattr(tr, "model", None)
    state = model.state_dict() if hasattr(model, "state_dict") else {}
    for name in sorted(state):
        h.update(name.encode())
        _hash_value(h, state[name])
    return h.hexdigest()[:32]


def entry_hash(entry: Any) -> str:
    """The runner's loaded variant's content hash, computed once per run."""
    if not entry.content_hash:
        entry.content_hash = variant_hash(entry.variant, entry.tr)
    return entry.content_hash


def key_parts(variant_digest: str, tr: Any, wl: Any, device: str, device_name: str, world_size: int = 1
              ) -> dict[str, Any]:
    """Everything the key covers (kept in the entry, so a reader can see why two runs did or did not share)."""
    import numpy
    import torch

    import core

    try:
        import transformers
        tf_version = transformers.__version__
    except Exception:  # noqa: BLE001 - a variant that never needs it
        tf_version = ""
    return {
        "format": FORMAT, "variant": variant_digest,
        "inference": {"batch_size": getattr(tr, "batch_size", None),
                      "max_batch_seconds": getattr(tr, "max_batch_seconds", None),
                      "do_normalize": getattr(tr, "do_normalize", None), "dtype": str(getattr(tr, "dtype", None)),
                      "length_buckets": str(getattr(tr, "buckets", None))},
        "data": {"manifest_hash": getattr(wl, "manifest_hash", ""), "dataset": getattr(wl, "dataset", ""),
                 "utterances": hashlib.sha256("\n".join(wl.utt_ids).encode()).hexdigest()[:16],
                 "world_size": world_size},
        "device": {"device": device.split(":")[0], "name": device_name, "threads": torch.get_num_threads(),
                   **{e: os.environ.get(e, "") for e in ISA_ENVS}},
        "software": {"torch": torch.__version__, "transformers": tf_version, "numpy": numpy.__version__,
                     "suite": core.__version__, "code": code_hash()},
    }


def key_of(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def load(key: str, kind: str = "accuracy") -> dict[str, Any] | None:
    """The cached entry of ``key``, or None (absent or unreadable: a miss, never an error)."""
    path = cache_dir(kind) / f"{key}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable accuracy cache entry, computed again (%s)", path, exc)
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or kind not in entry:
        return None
    return entry


def save(key: str, parts: dict[str, Any], accuracy: dict[str, Any], ids: Sequence[str], refs: Sequence[str],
         hyps: Sequence[str], origin: dict[str, Any], kind: str = "accuracy") -> Path | None:
    """Write the entry atomically; a cache that cannot be written is logged, never fatal.  ``accuracy`` is the
    entry's result (for ``kind="memory"``: the memory measurement, with no utterances)."""
    folder = cache_dir(kind)
    path = folder / f"{key}.json"
    entry = {"key": key, "parts": parts, kind: accuracy, "origin": origin,
             "utterances": [[i, r, h] for i, r, h in zip(ids, refs, hyps)]}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(entry, default=str), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("%s: accuracy cache not written (%s)", path, exc)
        return None
    return path
