"""Where a run's time goes: seconds per phase (build, memory, accuracy, warm-up, unseen and timed repeats, ...).

The runner wraps each piece of work in ``with clock("phase"):``; nested phases are not double counted (the
inner one's seconds are taken out of the outer one), so the phases add up to the time they cover.  Written to
meta.json as ``phases_s`` and logged in one line at the end, so two runs (before and after a change) compare
phase by phase.  Architecture-only (random-weight) jobs get their own phases (``arch build``, ...), as their
cost is of another kind than the trained variants'.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator


class PhaseClock:
    """Wall seconds per named phase; ``order`` keeps the order phases were first entered."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[list] = []  # [name, start, seconds spent in inner phases]
        self.t0 = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.seconds.setdefault(name, 0.0)
        frame = [name, time.perf_counter(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            spent = time.perf_counter() - frame[1]
            self.seconds[name] += spent - frame[2]
            if self._stack:
                self._stack[-1][2] += spent

    def add(self, name: str, seconds: float) -> None:
        """Seconds measured elsewhere (e.g. by the caller of the runner: the report)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def as_dict(self) -> dict[str, float]:
        """Phase -> seconds (rounded to 0.1 s), plus ``other``: the clock's lifetime not inside any phase."""
        total = time.perf_counter() - self.t0
        out = {k: round(v, 1) for k, v in self.seconds.items()}
        out["other"] = round(max(0.0, total - sum(self.seconds.values())), 1)
        out["total"] = round(total, 1)
        return out

    def line(self) -> str:
        d = self.as_dict()
        total = d.pop("total")
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(d.items(), key=lambda kv: -kv[1]) if v >= 0.05)
        return f"{total:.0f} s: {parts}"
