"""``buckets``: the model runs on a small fixed set of lengths, each batch zero-padded up to the next multiple of a
step (0.5 s; ``buckets-{ms}`` for another), so lengths never seen reuse kernels built for their bucket.

Why: a compiled graph (``compile``, ``int8-inductor``) or oneDNN (``front-end-bf16``) builds kernels per input
shape: oneDNN's primitive cache is keyed on the exact sizes and Inductor specialises some of them, so a deployer's
first batch of every new length pays for kernels the benchmark's repeats never see again.  Bucketing trades a
little padded compute (at most one step per batch) for shapes that repeat.

It marks the model (``model._footprint_length_buckets``) and :class:`core.inference.Transcriber` pads to the
buckets by default, so ``load_variant(...)`` + ``Transcriber(variant.model, ...)`` gets it with no flag.  Exact for
layer-norm front ends (the padding is masked; see :mod:`core.inference`); refused for group-norm ones, which take
no mask and normalise over the padding.  Runtime-only: nothing to save, the mark is set wherever the recipe is
named; ``length_buckets`` in the variant's info names the step.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import nn

from core.errors import FootprintError
from core.inference import LengthBuckets, uses_group_norm
from compress.methods.registry import register_method

log = logging.getLogger(__name__)

STRIDE = 320  # samples per frame of the wav2vec 2.0 front end: bucket lengths stay on its frame grid


@dataclass
class BucketsConfig:
    step_ms: int = 500
    fill_rows: bool = False  # also pad the last, smaller batch of a plan to the full batch size


def _options(name: str, groups: dict[str, str]) -> dict[str, Any]:
    return {"step_ms": int(groups["ms"])} if "ms" in groups else {}


@register_method("buckets-{ms}", BucketsConfig, options=_options, runtime_only=True,
                 description="buckets with a step of {ms} milliseconds (a multiple of 20)")
@register_method("buckets", BucketsConfig, runtime_only=True,
                 description="pad each batch up to the next multiple of 0.5 s, so lengths never seen reuse the "
                             "kernels of compiled and oneDNN variants; exact for layer-norm models (masked), "
                             "refused for group-norm ones")
def apply_buckets(model: nn.Module, config: BucketsConfig) -> nn.Module:
    step = config.step_ms * 16
    if config.step_ms <= 0 or step % STRIDE:
        raise FootprintError(f"buckets: step {config.step_ms} ms must be a positive multiple of 20 ms (the front "
                             "end's frame stride)")
    if uses_group_norm(model):
        raise FootprintError("buckets: a group-norm feature extractor takes no padding mask and normalises over the "
                             "padding, so bucketing would change its outputs; use buckets with layer-norm models")
    model._footprint_length_buckets = LengthBuckets(step=step, fill_rows=config.fill_rows)
    log.info("buckets: batches padded to multiples of %g s", step / 16000)
    return model
