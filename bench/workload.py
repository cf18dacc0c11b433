"""Workloads for the runner: a real LibriSpeech-layout subset, or random audio shaped like dev-clean.

The architecture-only timing (random weights, no download) needs audio of the right *lengths*, not of
the right content: LibriSpeech dev-clean (OpenSLR resource 12) has 2,703 utterances in 5.4 hours (the paper,
section 7), so a mean of 7.2 s; its longest is 32.6 s (read off the OpenSLR archive).  We draw a seeded
gamma distribution, clip it to [1.5, 32.6] s and rescale to that mean; on CPU a stated fraction of it,
chosen as evenly spaced quantiles so that the fraction keeps the length distribution.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

SAMPLE_RATE = 16_000
DEV_CLEAN_UTTS = 2703
DEV_CLEAN_MEAN_S = 7.2
DEV_CLEAN_MIN_S, DEV_CLEAN_MAX_S = 1.5, 32.6


@dataclass
class Workload:
    """What a pass runs over: ids, durations, references, and how to get each waveform (decoding timed)."""

    name: str
    utt_ids: list[str]
    durations: list[float]
    references: list[str] | None          # None: random audio, no accuracy pass
    loader: Callable[[int], np.ndarray]   # index -> float32 16 kHz waveform (file decoding for real data)
    manifest_hash: str = ""
    dataset: str = ""
    n_skipped: int = 0
    from_files: bool = True
    fraction: float = 1.0                 # of the full workload this one stands for
    full_audio_s: float = field(default=0.0)

    @property
    def audio_s(self) -> float:
        return float(sum(self.durations))

    def __len__(self) -> int:
        return len(self.utt_ids)

    def shard(self, rank: int, world: int) -> "Workload":
        """Every world-th utterance from ``rank`` (after sorting by length, so ranks get similar work)."""
        if world <= 1:
            return self
        order = sorted(range(len(self)), key=lambda i: self.durations[i])[rank::world]
        order.sort()
        return Workload(self.name, [self.utt_ids[i] for i in order], [self.durations[i] for i in order],
                        None if self.references is None else [self.references[i] for i in order],
                        _subloader(self.loader, order), self.manifest_hash, self.dataset, self.n_skipped,
                        self.from_files, self.fraction, self.full_audio_s)


    def subset(self, idx: Sequence[int], name: str = "") -> "Workload":
        """The utterances at ``idx`` (in that order), standing for their share of the audio."""
        idx = list(idx)
        return Workload(name or self.name, [self.utt_ids[i] for i in idx], [self.durations[i] for i in idx],
                        None if self.references is None else [self.references[i] for i in idx],
                        _subloader(self.loader, idx), self.manifest_hash, self.dataset, self.n_skipped,
                        self.from_files, self.fraction, self.full_audio_s)


def _subloader(loader: Callable[[int], np.ndarray], order: Sequence[int]) -> Callable[[int], np.ndarray]:
    return lambda i: loader(order[i])


def from_manifest(manifest, dataset: str, limit: int | None = None) -> Workload:  # noqa: ANN001
    from core.data.librispeech import load_audio

    m = manifest.subset_of(limit)
    utts = sorted(m.utterances, key=lambda u: u.utt_id)
    return Workload(name=dataset, utt_ids=[u.utt_id for u in utts], durations=[u.duration_s for u in utts],
                    references=[u.transcript for u in utts], loader=lambda i: load_audio(utts[i]),
                    manifest_hash=m.content_hash, dataset=dataset, n_skipped=m.skipped, from_files=True,
                    fraction=1.0, full_audio_s=float(sum(u.duration_s for u in utts)))


def dev_clean_durations(n: int = DEV_CLEAN_UTTS, mean: float = DEV_CLEAN_MEAN_S, seed: int = 0,
                        lo: float = DEV_CLEAN_MIN_S, hi: float = DEV_CLEAN_MAX_S) -> np.ndarray:
    """``n`` seeded durations in [lo, hi] with the given mean (gamma, shape 2.2, then clipped and rescaled)."""
    rng = np.random.default_rng(seed)
    d = rng.gamma(2.2, mean / 2.2, size=n)
    for _ in range(50):  # clipping moves the mean; rescale the unclipped part until it settles
        d = np.clip(d, lo, hi)
        err = mean - d.mean()
        if abs(err) < 1e-6:
            break
        free = (d > lo) & (d < hi)
        d[free] *= 1 + err * n / max(d[free].sum(), 1e-9)
    d = np.clip(d, lo, hi)
    d[np.argmax(d)] = hi  # the longest utterance is part of the shape (memory peak)
    return d


def arch_workload(fraction: float = 1.0, seed: int = 0) -> Workload:
    """Random audio with dev-clean's length distribution; ``fraction`` of it by evenly spaced quantiles."""
    full = dev_clean_durations(seed=seed)
    order = np.argsort(full)
    n = max(1, int(round(fraction * len(full))))
    pick = order[np.linspace(0, len(full) - 1, n).round().astype(int)] if n < len(full) else order
    durs = [float(round(full[i] * SAMPLE_RATE) / SAMPLE_RATE) for i in pick]
    ids = [f"arch-{int(i):04d}" for i in pick]

    def load(i: int) -> np.ndarray:
        r = np.random.default_rng(seed * 100_003 + int(pick[i]))
        return (0.1 * r.standard_normal(int(round(durs[i] * SAMPLE_RATE)))).astype(np.float32)

    h = f"dev-clean-shaped:n={len(full)},mean={DEV_CLEAN_MEAN_S},seed={seed},fraction={fraction:g}"
    return Workload(name="dev-clean-shaped random audio", utt_ids=ids, durations=durs, references=None,
                    loader=load, manifest_hash=h, dataset="synthetic:dev-clean-shaped", from_files=False,
                    fraction=sum(durs) / float(full.sum()), full_audio_s=float(full.sum()))
