"""What every method shares beyond ``core.variant`` and ``core.model_stats``: weight files, source hashes, versions."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import torch

# Files that hold weights in a variant directory (HF names and our own tensors file).
WEIGHT_FILE_PATTERNS = ("model.safetensors", "model-*.safetensors", "pytorch_model.bin", "pytorch_model-*.bin",
                        "variant.safetensors")


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


def versions() -> dict[str, str]:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}
