"""The ``unseen`` scenario: timed repeats over utterances whose lengths this process has never run.

oneDNN builds kernels per layer and input shape, and a padded batch's shape is (utterances, longest one's
samples), so a pass over lengths already run times cached kernels (``batched``, warm: a batch job that re-runs a
fixed set), while a server meets new lengths and builds kernels as it goes.  :func:`split` holds out a seeded share
of the utterances in length-disjoint subsets, one per repeat; the longest utterance stays out (the warm-up runs it,
as a server would have met a long one).  Every variant runs the same subset in the same repeat, so ratios pair as
in ``batched``.  The runner times these repeats after a warm-up on the other utterances and before any accuracy
pass or ``batched`` repeat runs the held-out lengths, and counts the batches whose shape the variant had run before
(``shapes_reused``; 0 unless the variant pads to fixed lengths).  oneDNN's cache is shared by the whole process:
a variant with layers identical to one timed before it in the same repeat (the same fp32 front end) reuses those
kernels; the rotated order spreads that over the variants.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
DEFAULT_SHARE = 0.5  # of the utterances held out: half a pass per variant in all, split over the repeats


@dataclass
class Split:
    rest: list[int]                 # accuracy, warm-up: never timed in ``unseen``
    subsets: list[list[int]]        # one per repeat, length-disjoint from each other and from ``rest``


def split(durations: Sequence[float], repeats: int, share: float = DEFAULT_SHARE, seed: int = 0) -> Split | None:
    """``share`` of the utterances (seeded) into ``repeats`` subsets with no length in common with each other or
    with the rest; None when there are too few utterances (fewer than one per repeat plus one to warm up on)."""
    by_len: dict[int, list[int]] = {}
    for i, d in enumerate(durations):
        by_len.setdefault(int(round(d * SAMPLE_RATE)), []).append(i)
    lengths = sorted(by_len)
    if len(lengths) < repeats + 1:
        return None
    longest = lengths.pop()  # stays in the rest: the warm-up sets the allocator's high-water mark with it
    random.Random(seed).shuffle(lengths)
    n_held = min(len(lengths), max(repeats, round(share * len(durations))))
    held, rest = lengths[:n_held], lengths[n_held:] + [longest]
    subsets = [sorted(i for n in held[r::repeats] for i in by_len[n]) for r in range(repeats)]
    return Split(sorted(i for n in rest for i in by_len[n]), subsets)


@dataclass
class ShapeLog:
    """Padded shapes each loaded variant has run in this process (every pass the runner makes records here)."""

    seen: dict[Any, set] = field(default_factory=dict)

    def record(self, key: Any, shapes: Sequence[Sequence[int]] | None) -> int:
        """Add ``shapes``; return how many of them had been run before by ``key``."""
        s = self.seen.setdefault(key, set())
        reused = 0
        for x in (tuple(x) for x in shapes or []):
            reused += x in s  # a shape met twice within one pass is warm the second time too
            s.add(x)
        return reused
