"""The one variant type: a model ready to run, with what the benchmark reports about it.

``compress`` builds variants (``compress.variants.load_variant``); ``bench`` measures them (the runner receives a
loader returning these); neither needs the other's code for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


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
    dtype: torch.dtype = torch.float32  # compute dtype: pass to core.inference.Transcriber(dtype=...)
    device: str = "cpu"
    record: dict[str, Any] = field(default_factory=dict)  # variant.json content (or what it would be)
