"""Replay a recorded energy-counter trace: tests and demos need no hardware.

A trace is JSON: ``{"method": "rapl", "measured": true, "detail": "...", "wrap_j": {"package-0": 262143.99},
"samples": [[t_s, {"package-0": joules, ...}], ...]}`` with cumulative counters (they may wrap).  The meter's
clock (real time since :meth:`open` unless one is injected) indexes the trace; counters are interpolated
linearly between samples and held at the last sample past the end.

A replay is never a measurement of this run: its rows say ``energy_measured = false`` and ``energy_method =
replay``, and the detail names what was recorded (the trace's ``method``, and ``measured`` as recorded there).
"""
from __future__ import annotations

import bisect
import json
import time
from pathlib import Path
from typing import Callable

from bench.energy.base import CounterMeter, MeterContext, MeterUnavailable, counter_delta, register_meter


@register_meter
class ReplayMeter(CounterMeter):
    name = "replay"
    scope = "process"

    def __init__(self, trace: str | Path | dict, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.trace_src = trace
        self._clock = clock
        self._t0 = 0.0
        self.times: list[float] = []
        self.unwrapped: list[dict[str, float]] = []
        self.meta: dict = {}

    @classmethod
    def from_context(cls, ctx: MeterContext) -> "ReplayMeter":
        if not ctx.arg:
            raise MeterUnavailable("replay needs a trace: --energy replay:TRACE.json")
        return cls(ctx.arg)

    def open(self) -> None:
        trace = self.trace_src
        if not isinstance(trace, dict):
            path = Path(trace)
            try:
                trace = json.loads(path.read_text())
            except FileNotFoundError:
                raise MeterUnavailable(f"{path}: replay trace not found") from None
            except json.JSONDecodeError as exc:
                raise MeterUnavailable(f"{path}: replay trace is not JSON ({exc})") from None
        samples = trace.get("samples") or []
        if len(samples) < 2:
            raise MeterUnavailable("replay trace needs at least two samples")
        self.meta = trace
        self.wrap_j = {k: float(v) for k, v in (trace.get("wrap_j") or {}).items()}
        # Unwrap once so that interpolation between samples is valid across a wraparound.
        prev: dict[str, float] | None = None
        acc: dict[str, float] = {}
        for t, counters in samples:
            row = {}
            for k, v in counters.items():
                v = float(v)
                if prev is not None and k in prev:
                    acc[k] = acc.get(k, 0.0) + counter_delta(prev[k], v, self.wrap_j.get(k))
                else:
                    acc.setdefault(k, 0.0)
                row[k] = acc[k]
            prev = {k: float(v) for k, v in counters.items()}
            self.times.append(float(t))
            self.unwrapped.append(row)
        self.wrap_j = {}  # counters are unwrapped now
        self._t0 = time.perf_counter()

    # Nothing was measured during this run, whatever the trace says about how it was recorded.
    measured = False

    def component_counter(self, component: str) -> bool:
        # A recorded counter: an explicit --idle-baseline-s replays its idle stretch too (off by default).
        return bool(self.meta.get("measured", True))

    def now(self) -> float:
        return self._clock() if self._clock else time.perf_counter() - self._t0

    def read(self) -> dict[str, float]:
        t = self.now()
        i = bisect.bisect_right(self.times, t)
        if i <= 0:
            return dict(self.unwrapped[0])
        if i >= len(self.times):
            return dict(self.unwrapped[-1])
        t0, t1 = self.times[i - 1], self.times[i]
        a, b = self.unwrapped[i - 1], self.unwrapped[i]
        f = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return {k: a[k] + f * (b.get(k, a[k]) - a[k]) for k in a}

    def describe(self) -> str:
        src = self.trace_src if not isinstance(self.trace_src, dict) else "inline trace"
        how = {True: "measured", False: "estimated"}.get(self.meta.get("measured"), "of unrecorded provenance")
        return (f"replay (not measured in this run) of a recorded {self.meta.get('method', 'counter')} trace, "
                f"{how} when recorded, from {src}" + (f": {self.meta['detail']}" if self.meta.get("detail") else ""))
