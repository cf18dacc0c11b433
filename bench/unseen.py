"""The ``unseen`` scenario: timed repeats over utterances whose lengths this process has never run.

oneDNN builds kernels per layer and input shape, and a padded batch's shape is (utterances, longest one's
samples), so a pass over lengths already run times cached kernels (``batched``, warm: a batch job that re-runs a
fixed set), while a server meets new lengths and builds kernels as it goes.  :func:`split_batches` holds out a
seeded share of the whole-pass plan's batches (the run's batch size) in length-disjoint subsets, one per repeat;
:func:`split` does the same with single utterances where the plan has too few batches.  The longest utterance
stays out (the warm-up runs it, as a server would have met a long one).  Every variant runs the same subset in the
same repeat, so ratios pair as in ``batched``.

Held out as whole batches, a variant whose own plan has those batches (:func:`aligned`: the run's batch size, or
one utterance at a time) runs each of them in an unseen repeat exactly as its accuracy pass would: same
utterances, same padding, same kernels, so the same transcripts.  The accuracy pass then runs the other batches
only and scores the held-out utterances with the unseen repeats' transcripts (bench/accuracy.py): each utterance
is transcribed once per run.

The runner times these repeats after a warm-up on the other utterances and before any accuracy pass or ``batched``
repeat runs the held-out lengths, and counts the batches whose shape the variant had run before
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


def _samples(d: float) -> int:
    return int(round(d * SAMPLE_RATE))


def split(durations: Sequence[float], repeats: int, share: float = DEFAULT_SHARE, seed: int = 0) -> Split | None:
    """``share`` of the utterances (seeded) into ``repeats`` subsets with no length in common with each other or
    with the rest; None when there are too few utterances (fewer than one per repeat plus one to warm up on)."""
    by_len: dict[int, list[int]] = {}
    for i, d in enumerate(durations):
        by_len.setdefault(_samples(d), []).append(i)
    lengths = sorted(by_len)
    if len(lengths) < repeats + 1:
        return None
    longest = lengths.pop()  # stays in the rest: the warm-up sets the allocator's high-water mark with it
    random.Random(seed).shuffle(lengths)
    n_held = min(len(lengths), max(repeats, round(share * len(durations))))
    held, rest = lengths[:n_held], lengths[n_held:] + [longest]
    subsets = [sorted(i for n in held[r::repeats] for i in by_len[n]) for r in range(repeats)]
    return Split(sorted(i for n in rest for i in by_len[n]), subsets)


def split_batches(plan: Sequence[Sequence[int]], durations: Sequence[float], repeats: int,
                  share: float = DEFAULT_SHARE, seed: int = 0) -> Split | None:
    """:func:`split` by whole batches of ``plan``: a seeded ``share`` of the batches whose lengths occur in no other
    batch (so no held-out length is ever run before its repeat, whatever a variant's batching), dealt over
    ``repeats`` subsets of about equal audio; the batch holding the longest utterance stays in the rest.  None when
    fewer than ``repeats`` batches qualify."""
    owner: dict[int, set[int]] = {}
    for k, b in enumerate(plan):
        for i in b:
            owner.setdefault(_samples(durations[i]), set()).add(k)
    longest = max(range(len(durations)), key=lambda i: durations[i]) if durations else -1
    eligible = [k for k, b in enumerate(plan)
                if longest not in b and all(owner[_samples(durations[i])] == {k} for i in b)]
    if len(eligible) < repeats or len(plan) < repeats + 1:
        return None
    random.Random(seed).shuffle(eligible)
    n_held = min(len(eligible), max(repeats, round(share * len(plan))))
    # dealt longest batch first to the repeat with the least audio so far: repeats of about equal work
    audio = {k: sum(durations[i] for i in plan[k]) for k in eligible[:n_held]}
    dealt: list[list[int]] = [[] for _ in range(repeats)]
    for k in sorted(audio, key=lambda k: -audio[k]):
        r = min(range(repeats), key=lambda r: (sum(audio[j] for j in dealt[r]), len(dealt[r]), r))
        dealt[r].append(k)
    subsets = [sorted(i for k in ks for i in plan[k]) for ks in dealt]
    out = {i for s in subsets for i in s}
    return Split(sorted(i for b in plan for i in b if i not in out), subsets)


def aligned(sp: Split, plan: Sequence[Sequence[int]]) -> list[list[list[int]]] | None:
    """Per repeat, the batches of ``plan`` (a variant's own whole-pass plan) that make up its subset, as positions
    in the subset (what a pass over ``wl.subset(subset)`` takes); None when a batch of ``plan`` mixes held-out
    utterances with others or with another repeat's: then the subset is batched on its own, and its transcripts are
    not the accuracy pass's."""
    where = {i: r for r, s in enumerate(sp.subsets) for i in s}
    per: list[list[list[int]]] = [[] for _ in sp.subsets]
    for b in plan:
        reps = {where.get(i, -1) for i in b}
        if len(reps) > 1:
            return None
        r = reps.pop()
        if r >= 0:
            per[r].append(list(b))
    pos = [{i: k for k, i in enumerate(s)} for s in sp.subsets]
    return [[[pos[r][i] for i in b] for b in bs] for r, bs in enumerate(per)]


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
