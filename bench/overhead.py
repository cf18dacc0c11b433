"""The energy tracker's own overhead: the same short pass timed with and without an energy window, in pairs.

Each pair runs a slice of the job's batches (every ``1 / SLICE_SHARE``-th batch of its plan, spread over its
lengths) once inside an energy window and once outside, back to back, the order alternating; the overhead is the
median of the pairs' ratios, given with a distribution-free interval for that median (the k-th smallest and k-th
largest of n ratios: :func:`median_interval`).  Fewer than :data:`MIN_PAIRS` pairs cannot give such an interval at
90 % or more, so a run asked for fewer says "not measured" and why (a single pair's ratio on a shared machine is
noise presented as a figure).  The slice keeps the cost small: a settle pass and ``2 x pairs`` passes over a tenth
of the batches cost about as much as one full pass.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Sequence

MIN_PAIRS = 5  # the fewest with a distribution-free interval for the median at >= 90 % (93.75 %: min..max)
SLICE_SHARE = 0.1  # share of the plan's batches each timed pass runs
LEVEL = 0.9  # the interval's least coverage


def _median(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def slice_batches(plan: Sequence[Sequence[int]], share: float = SLICE_SHARE) -> list[list[int]]:
    """Every ``round(1 / share)``-th batch, starting half a step in (a plan sorted by length is sampled across
    its lengths, not at one end); at least one batch."""
    step = max(1, round(1 / share))
    picked = [list(b) for b in plan[step // 2::step]]
    return picked or [list(b) for b in plan[:1]]


def median_interval(xs: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """``(low, high, coverage)``: the k-th smallest and k-th largest of the n values cover the median with
    probability ``1 - 2 P(B <= k - 1)``, B ~ Binomial(n, 1/2), whatever the distribution; the narrowest such pair
    with at least ``level`` (NaNs when even min..max falls short: fewer than 5 values at 90 %)."""
    v = sorted(xs)
    n, best = len(v), None
    for k in range(1, n // 2 + 1):
        coverage = 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n
        if coverage < level:
            break
        best = (v[k - 1], v[n - k], coverage)
    return best or (float("nan"), float("nan"), float("nan"))


def pair_fractions(with_s: Sequence[float], without_s: Sequence[float]) -> list[float]:
    """Each pair's (with - without) / without."""
    return [w / wo - 1 for w, wo in zip(with_s, without_s) if wo > 0]


def not_measured(method: str, variant: str, pairs: int, why: str) -> dict[str, Any]:
    return {"method": method, "variant": variant, "pairs": pairs, "measured": False, "why": why}


def too_few(pairs: int) -> str:
    return (f"{pairs} pair{'s' * (pairs != 1)} asked for; at least {MIN_PAIRS} are needed for a median with an "
            f"interval (--overhead-pairs)")


def _fractions(o: dict[str, Any]) -> list[float]:
    """A saved record's per-pair ratios (records saved before they were kept: from the passes' seconds)."""
    return o.get("pair_fractions") or pair_fractions(o.get("with_s") or [], o.get("without_s") or [])


def why_not_measured(o: dict[str, Any]) -> str | None:
    """None when the record holds enough pairs for a median with an interval; else why not."""
    pairs = o.get("pairs") or 0
    if o.get("measured") is False:
        return o.get("why") or "not measured"
    if pairs < MIN_PAIRS:
        return too_few(pairs)
    if len(_fractions(o)) < MIN_PAIRS:
        return f"{len(_fractions(o))} of {pairs} pairs timed; at least {MIN_PAIRS} are needed"
    return None


def measured_fraction(o: dict[str, Any]) -> float:
    """The median per-pair overhead, NaN when not measured (what the rows' ``tracker_overhead_frac`` holds)."""
    return float("nan") if why_not_measured(o) else _median(_fractions(o))


def describe(o: dict[str, Any]) -> str:
    """The overhead as one phrase: the median and its interval, or "not measured (why)"."""
    why = why_not_measured(o)
    if why:
        return f"{o.get('method')}: not measured ({why})"
    fracs = _fractions(o)
    lo, hi, coverage = median_interval(fracs)
    share = o.get("slice_share")
    over = f" over {100 * share:.0f} % of the batches" if share else ""
    cpu = o.get("cpu_time_fraction", float("nan"))
    return (f"{o.get('method')}: {100 * _median(fracs):+.2f} % (median of {len(fracs)} paired passes{over}; "
            f"{100 * coverage:.0f} % interval {100 * lo:+.2f} .. {100 * hi:+.2f} %; window open/close "
            f"{100 * o.get('window_ops_fraction', float('nan')):.3f} %; process CPU time {100 * cpu:+.2f} %)")


def measure_overhead(entry: Any, meter: Any, pairs: int, ctx: Any,
                     share: float = SLICE_SHARE) -> dict[str, Any]:
    """Time a slice of the job's batches with and without an energy window, ``pairs`` times, alternating which
    goes first; fewer than :data:`MIN_PAIRS` pairs: not measured, nothing run."""
    from bench.scenarios import run_pass

    tr, wl, job = entry.tr, entry.wl, entry.job
    if pairs < MIN_PAIRS:
        return not_measured(meter.name, job.variant, pairs, too_few(pairs))
    batches = slice_batches(job.scenario.plan(tr, wl.durations), share)
    with_s: list[float] = []
    without_s: list[float] = []
    ops_s: list[float] = []
    # One untimed pass over the slice first: the warm-up batches do not create every input shape's kernels, and
    # the first pass over a shape pays for them; without this the first timed pass would carry that cost.
    t_settle = time.perf_counter()
    run_pass(tr, wl, job.scenario, audio_cache=entry.audio_cache, batches=batches)
    settle_s = time.perf_counter() - t_settle
    cpu_with: list[float] = []
    cpu_without: list[float] = []
    for i in range(pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        for tracked in order:
            ctx.barrier()
            c0 = time.process_time()  # this process's CPU time, all threads: less sensitive to other tenants
            t0 = time.perf_counter()
            if tracked:
                meter.begin_window("overhead")
            t1 = time.perf_counter()
            try:
                run_pass(tr, wl, job.scenario, audio_cache=entry.audio_cache, batches=batches)
            finally:  # a failing pass must not leave the window open
                t2 = time.perf_counter()
                if tracked:
                    meter.end_window("overhead")
            if tracked:
                ops_s.append((t1 - t0) + (time.perf_counter() - t2))
            (with_s if tracked else without_s).append(time.perf_counter() - t0)
            (cpu_with if tracked else cpu_without).append(time.process_time() - c0)
    return summarise(meter.name, job.variant, with_s, without_s, ops_s, cpu_with, cpu_without,
                     settle_pass_s=settle_s, slice_share=share, slice_batches=len(batches))


def summarise(method: str, variant: str, with_s: Sequence[float], without_s: Sequence[float],
              ops_s: Sequence[float], cpu_with: Sequence[float], cpu_without: Sequence[float],
              **extra: Any) -> dict[str, Any]:
    """The saved record: every pass's seconds, and the median per-pair ratio (``fraction``) with its interval."""
    fracs = pair_fractions(with_s, without_s)
    lo, hi, coverage = median_interval(fracs)
    wo = _median(without_s)
    cw, cwo = _median(cpu_with), _median(cpu_without)
    return {"method": method, "variant": variant, "pairs": len(fracs), "measured": True, **extra,
            "with_s": list(with_s), "without_s": list(without_s), "window_ops_s": list(ops_s),
            "pair_fractions": fracs, "fraction": _median(fracs), "interval": [lo, hi], "interval_coverage": coverage,
            "median_with_s": _median(with_s), "median_without_s": wo,
            "window_ops_fraction": _median(ops_s) / wo if wo > 0 else float("nan"),
            "cpu_with_s": list(cpu_with), "cpu_without_s": list(cpu_without),
            "cpu_time_fraction": (cw - cwo) / cwo if cwo > 0 else float("nan"),
            "note": "fraction: the median over pairs of (pass with an energy window, its opening and closing "
                    "included) / (the same pass without) - 1, each pair back to back over the same slice of "
                    "batches; interval: a distribution-free interval for that median (order statistics); "
                    "window_ops: the open/close calls alone, a fixed cost per window, over the pass without; "
                    "cpu_time_fraction: the medians compared in this process's CPU seconds, which other tenants "
                    "disturb less"}
