"""The energy tracker's own overhead: the same pass timed with and without an energy window."""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Sequence

from bench.scenarios import run_pass


def _median(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def measure_overhead(entry: Any, meter: Any, pairs: int, ctx: Any) -> dict[str, Any]:
    """Time the same pass with and without an energy window, alternating which goes first."""
    tr, wl, job = entry.tr, entry.wl, entry.job
    with_s: list[float] = []
    without_s: list[float] = []
    ops_s: list[float] = []
    # One untimed full pass first: the warm-up batches do not create every input shape's kernels, and the
    # first full pass pays for them; without this the first timed pass of the pairs would carry that cost.
    t_settle = time.perf_counter()
    run_pass(tr, wl, job.scenario, audio_cache=entry.audio_cache)
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
                run_pass(tr, wl, job.scenario, audio_cache=entry.audio_cache)
            finally:  # a failing pass must not leave the window open
                t2 = time.perf_counter()
                if tracked:
                    meter.end_window("overhead")
            if tracked:
                ops_s.append((t1 - t0) + (time.perf_counter() - t2))
            (with_s if tracked else without_s).append(time.perf_counter() - t0)
            (cpu_with if tracked else cpu_without).append(time.process_time() - c0)
    w, wo = _median(with_s), _median(without_s)
    cw, cwo = _median(cpu_with), _median(cpu_without)
    mw, mwo = min(with_s), min(without_s)
    ops = _median(ops_s)
    return {"method": meter.name, "variant": job.variant, "pairs": pairs, "settle_pass_s": settle_s,
            "with_s": with_s, "without_s": without_s, "window_ops_s": ops_s,
            "median_with_s": w, "median_without_s": wo, "min_with_s": mw, "min_without_s": mwo,
            "fraction": (mw - mwo) / mwo if mwo > 0 else float("nan"),
            "median_fraction": (w - wo) / wo if wo > 0 else float("nan"),
            "window_ops_fraction": ops / wo if wo > 0 else float("nan"),
            "cpu_with_s": cpu_with, "cpu_without_s": cpu_without,
            "cpu_time_fraction": (cw - cwo) / cwo if cwo > 0 else float("nan"),
            "note": "fraction: fastest pass with a window (incl. opening/closing it) vs fastest without (machine "
                    "noise only adds time, so minima are the robust comparison; medians beside them); "
                    "window_ops: the open/close calls alone, a fixed cost per window; cpu_time_fraction: the same "
                    "comparison in this process's CPU seconds (medians), which other tenants disturb less"}
