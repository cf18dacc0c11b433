"""Batched CTC inference: length-sorted buckets under ``torch.inference_mode``, or batch 1.

The steps are separate (:meth:`Transcriber.make_inputs`, :meth:`forward`, :meth:`decode`) so the runner can
time the model alone and the end-to-end path (audio decoding + inputs + model + decoding) apart.

Padding: layer-norm-extractor models (``feat_extract_norm == "layer"``) get an attention mask and are
insensitive to padding.  Group-norm extractors (wav2vec_big_960h, base-960h) take no mask in transformers
and normalise over the zero padding too, so their outputs change with the batch; they default to batch 1
unless the caller sets ``allow_group_norm_batching`` (see tests/test_inference.py for the measured effect).

Length buckets (:class:`LengthBuckets`): a compiled or oneDNN model builds kernels per input shape (oneDNN's
primitives are keyed on the GEMM sizes, Inductor specialises some), so every batch of a length never seen pays for
new kernels.  With buckets each batch is zero-padded up to the next multiple of a fixed step, so lengths never seen
reuse the kernels of their bucket.  Exact for layer-norm models: the mask hides the padding, the convs have no
padding of their own (a real frame reads real samples only), the encoder zeroes padded frames before its
positional conv, and decoding uses the real lengths.  Group-norm models normalise over the padding: refused.
A model marked by the ``buckets`` recipe (``model._footprint_length_buckets``) is bucketed by default.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from core.text import BLANK_ID, VOCAB, greedy_ctc_decode

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    input_values: torch.Tensor
    attention_mask: torch.Tensor | None
    lengths: list[int]  # samples per utterance, before padding


@dataclass(frozen=True)
class LengthBuckets:
    """Pad each batch's length up to a multiple of ``step`` samples (a multiple of the front end's stride, 320,
    keeps the frame grid); with ``fill_rows`` also its rows up to the Transcriber's batch size (rows of zeros,
    mask 0), so the last, smaller batch of a plan reuses the full batch's kernels too."""

    step: int = 8000  # samples: 0.5 s at 16 kHz
    fill_rows: bool = False

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError(f"length buckets: step must be positive, not {self.step}")

    def length(self, samples: int) -> int:
        return int(math.ceil(samples / self.step) * self.step)

    def label(self) -> str:
        return f"{self.step / 16000:g}s" + ("+rows" if self.fill_rows else "")


def uses_group_norm(model) -> bool:  # noqa: ANN001
    return getattr(model.config, "feat_extract_norm", "group") == "group"


def plan_batches(durations: Sequence[float], batch_size: int, max_batch_seconds: float | None = None
                 ) -> list[list[int]]:
    """Length-sorted buckets of indices: at most ``batch_size`` items and ``max_batch_seconds`` of padded audio."""
    order = sorted(range(len(durations)), key=lambda i: durations[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = max([durations[j] for j in cur] + [durations[i]])
        if cur and (len(cur) >= batch_size or
                    (max_batch_seconds is not None and longest * (len(cur) + 1) > max_batch_seconds)):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def pad_batch(audios: Sequence[np.ndarray], do_normalize: bool = True, length: int = 0, rows: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded float32 batch and its 0/1 mask; with ``do_normalize`` each utterance is scaled to zero mean and
    unit variance over its real samples first (as Wav2Vec2FeatureExtractor).  Shared by inference and training.
    ``length`` / ``rows``: pad to at least that many samples / rows (length buckets)."""
    n = max(max(len(a) for a in audios), length)
    batch = np.zeros((max(len(audios), rows), n), dtype=np.float32)
    mask = np.zeros(batch.shape, dtype=np.int64)
    for i, a in enumerate(audios):
        if do_normalize:
            a = (a - a.mean()) / np.sqrt(a.var() + 1e-7)
        batch[i, : len(a)] = a
        mask[i, : len(a)] = 1
    return batch, mask


class Transcriber:
    def __init__(self, model, do_normalize: bool = True, device: str | torch.device = "cpu",  # noqa: ANN001
                 batch_size: int = 8, max_batch_seconds: float | None = 240.0,
                 allow_group_norm_batching: bool = False, dtype: torch.dtype | None = None,
                 length_buckets: LengthBuckets | tuple[()] | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.dtype = dtype
        if dtype is not None:
            self.model = self.model.to(dtype)
        self.do_normalize = do_normalize
        self.group_norm = uses_group_norm(model)
        if self.group_norm and batch_size > 1 and not allow_group_norm_batching:
            log.info("group-norm feature extractor: zero padding changes its outputs; using batch 1")
            batch_size = 1
        self.batch_size = batch_size
        self.max_batch_seconds = max_batch_seconds
        self.vocab = VOCAB
        self.buckets = self._buckets(model, length_buckets)

    def _buckets(self, model, length_buckets) -> LengthBuckets | None:  # noqa: ANN001
        """``None``: the model's own (the ``buckets`` recipe), if any; ``()``: none; else these."""
        if length_buckets is None:
            length_buckets = getattr(model, "_footprint_length_buckets", None)
        if not length_buckets:
            return None
        if not isinstance(length_buckets, LengthBuckets):
            raise TypeError(f"length_buckets: expected LengthBuckets, () or None, not {length_buckets!r}")
        if self.group_norm:
            from core.errors import FootprintError

            raise FootprintError("length buckets: a group-norm feature extractor normalises over the zero padding "
                                 "(it takes no mask), so padding to a bucket changes its outputs; run it unbucketed")
        return length_buckets

    def plan(self, durations: Sequence[float]) -> list[list[int]]:
        return plan_batches(durations, self.batch_size, self.max_batch_seconds)

    def make_inputs(self, audios: Sequence[np.ndarray]) -> Inputs:
        b = self.buckets
        length = b.length(max(len(a) for a in audios)) if b else 0
        rows = self.batch_size if b and b.fill_rows else 0
        batch, mask = pad_batch(audios, self.do_normalize, length, rows)
        values = torch.from_numpy(batch).to(self.device)
        if self.dtype is not None:
            values = values.to(self.dtype)
        attn = None if self.group_norm else torch.from_numpy(mask).to(self.device)
        return Inputs(values, attn, [len(a) for a in audios])

    @torch.inference_mode()
    def forward(self, inputs: Inputs) -> torch.Tensor:
        return self.model(inputs.input_values, attention_mask=inputs.attention_mask).logits

    def decode(self, logits: torch.Tensor, inputs: Inputs) -> list[str]:
        ids = logits.argmax(dim=-1).cpu()
        frames = self.model._get_feat_extract_output_lengths(torch.tensor(inputs.lengths)).tolist()
        return [greedy_ctc_decode(ids[i, : int(frames[i])].tolist(), self.vocab, BLANK_ID)
                for i in range(len(inputs.lengths))]

    def transcribe(self, audios: Sequence[np.ndarray], progress: bool = False) -> list[str]:
        """Transcripts in input order."""
        from tqdm import tqdm

        out: list[str] = [""] * len(audios)
        plan = self.plan([len(a) / 16000 for a in audios])
        for idx in tqdm(plan, desc="transcribe", unit="batch", disable=not progress):
            inputs = self.make_inputs([audios[i] for i in idx])
            texts = self.decode(self.forward(inputs), inputs)
            for i, t in zip(idx, texts):
                out[i] = t
        return out
