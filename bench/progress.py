"""One progress bar for a whole benchmark run, with an ETA, and a one-line summary per variant.

The bar's unit is planned work, not steps: a pass counts its audio seconds and a build (or a memory
measurement) a fixed share of the workload's audio, so the ETA that tqdm derives from the rate so far is a
time, not a count of unequal steps (a compiled variant's build still takes longer than its share: the ETA is
rough until the builds are behind).  Log lines are printed above the bar while it is open.
"""
from __future__ import annotations

import contextlib
import logging
import statistics
from typing import Any, Iterator

from core.speedup import paired_ratios

log = logging.getLogger(__name__)

BUILD_SHARE = 0.5   # a build counts as half a pass over the workload (plain builds less, compiled ones more)
MEMORY_REPEATS = 2  # the memory measurement runs the heaviest batch twice


class JobProgress:
    """``plan(units)`` before the run, ``step(units, label)`` as work completes; disabled: no output at all."""

    def __init__(self, enabled: bool, desc: str = "bench") -> None:
        self.enabled = enabled
        self.desc = desc
        self.total = 0.0
        self.bar: Any = None
        self._redirect: Any = None

    def plan(self, units: float) -> None:
        self.total += max(0.0, float(units))
        if self.bar is not None:
            self.bar.total = round(self.total, 1)
            self.bar.refresh()

    def open(self) -> None:
        if not self.enabled or self.bar is not None:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=round(self.total, 1), desc=self.desc, unit="s-audio", dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")

    def step(self, units: float, label: str = "") -> None:
        if self.bar is None:
            return
        if label:
            self.bar.set_postfix_str(label, refresh=False)
        self.bar.update(max(0.0, float(units)))

    def label(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    @contextlib.contextmanager
    def logging_above(self) -> Iterator[None]:
        """While the bar is open, log records are written above it (not through it)."""
        if not self.enabled:
            yield
            return
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():
            yield


def paired_speedup(reference: dict[int, float], variant: dict[int, float]) -> float | None:
    """Median over the repeats both have of reference time / variant time (model seconds of the same audio), as
    ``bench ratios`` and the report compute it (core.speedup); None: no pair."""
    ratios = paired_ratios(reference, variant)
    return statistics.median(ratios) if ratios else None


def variant_line(variant: str, dev: str, wer: float | None, cached: bool,
                 speedups: dict[str, tuple[float | None, int]], reference: str | None) -> str:
    """``int8-dynamic on cpu: WER 9.09 %; x1.14 warm, x1.07 unseen vs embedded (model time, median of 2 paired
    repeat(s))``; ``speedups``: scenario -> (median speed-up or None, pairs it is the median of)."""
    parts = [f"{variant} on {dev}: "]
    parts.append("WER n/a (random weights)" if wer is None or wer != wer else
                 f"WER {100 * wer:.2f} %" + (" (from the accuracy cache)" if cached else ""))
    shown = {k: v for k, v in speedups.items() if v[0] is not None}
    if reference and shown and variant != reference:
        counts = {n for _, n in shown.values()}
        if len(counts) == 1:
            text = ", ".join(f"x{s:.2f} {k}" for k, (s, _) in shown.items())
            parts.append(f"; {text} vs {reference} (model time, median of {counts.pop()} paired repeat(s))")
        else:  # a scenario with fewer pairs (a repeat failed or was not run): say so per scenario
            text = ", ".join(f"x{s:.2f} {k} ({n} pairs)" for k, (s, n) in shown.items())
            parts.append(f"; {text} vs {reference} (model time, medians of paired repeats)")
    return "".join(parts)


def plan_units(run: Any) -> dict[tuple[str, str, str], float]:
    """Every step of ``run`` (the runner's state) still to do -> its units: (step, variant, device) -> audio seconds."""
    cfg, u = run.cfg, {}
    for dev in cfg.devices:
        for job in run.jobs:
            wl = job.scenario.workload(run.data_wl, run.arch_wls, dev)
            audio = wl.audio_s / max(1, run.ctx.world_size)
            batch = min(audio, job.batch_size * max(wl.durations, default=0.0))
            perf, uns = run.pending(job, dev), run.pending(job, dev, "unseen")
            acc = run.accuracy_to_do(job, dev)
            if not (perf or uns or acc):
                continue
            v = job.variant
            u[("build", v, dev)] = BUILD_SHARE * audio
            if (perf or uns) and run.measures_memory(job):
                u[("memory", v, dev)] = MEMORY_REPEATS * batch
            if uns and cfg.warmup > 0:
                u[("unseen warm-up", v, dev)] = batch
            for r in uns:
                u[(f"unseen #{r}", v, dev)] = cfg.unseen_share * audio / cfg.repeats
            if acc:
                u[("accuracy", v, dev)] = audio
            if perf and cfg.warmup > 0:
                u[("warm-up", v, dev)] = batch
            share = cfg.timed_share if job.scenario.uses_data else 1.0
            for r in perf:
                u[(f"repeat #{r}", v, dev)] = share * audio
        if cfg.overhead_pairs > 0 and run.data_wl is not None:
            u[("tracker overhead", "", dev)] = 2 * cfg.overhead_pairs * run.data_wl.audio_s
    return u


def summary_line(run: Any, e: Any, dev: str, final: bool = False) -> str | None:
    """One line when a variant's rows are done: its WER and its speed-ups against the run's teacher (the first of
    bench.ratios' teacher names, else the first trained job), paired by repeat, the same medians ``bench ratios``
    prints.  None while the teacher has yet to run a repeat that the variant has run (the repeats rotate, so a
    variant can finish before the teacher): the line waits for it, unless ``final``."""
    from bench.ratios import TEACHER_NAMES

    on_dev = {v: x for (v, d), x in run.loaded.items() if d == dev}
    ref = next((t for t in TEACHER_NAMES if t in on_dev), None) or next(
        (j.variant for j in run.jobs if j.weights == "trained" and j.variant in on_dev), None)
    if not e.job.scenario.uses_data:  # random weights: against the architecture it is a recipe of, if any
        base = e.job.variant.partition("+")[0]
        ref = base if base != e.job.variant and base in on_dev else None
    speedups = {}
    for pass_, word in (("perf", "warm"), ("unseen", "unseen")):
        mine = run.model_s.get((e.job.variant, dev, pass_), {})
        theirs = run.model_s.get((ref, dev, pass_), {}) if ref else {}
        if ref and ref != e.job.variant and not final and not set(mine) <= set(theirs):
            return None
        speedups[word] = (paired_speedup(theirs, mine), len(set(mine) & set(theirs)))
    wer = e.acc.get("wer") if e.acc else None
    return variant_line(e.job.variant, dev, wer, e.accuracy_source == "cache", speedups, ref)
