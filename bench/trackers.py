"""Trackers around a timed pass: stage clock, peak RSS, the energy window, CUDA memory.

:func:`track_repeat` opens them as one ``contextlib.ExitStack`` per repeat; leaving it (normally or by an
exception) closes each one, so a failing pass never leaves an energy window open or the CUDA peak unread.
Readings land in a :class:`Readings` the caller reads after the ``with`` block.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)


class StageClock:
    """Stage timer: wall time after a CUDA synchronisation, plus CUDA events for the model stage."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.cuda = device.type == "cuda"
        self.device = device
        self.events: list[tuple[Any, Any]] = []

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def event(self) -> Any:
        if not self.cuda:
            return None
        e = self.torch.cuda.Event(enable_timing=True)
        e.record()
        return e

    def events_s(self) -> float:
        if not self.events:
            return float("nan")
        return sum(a.elapsed_time(b) for a, b in self.events) / 1000.0


class PeakRSS:
    """Process peak RSS over a span: Linux's VmHWM reset through /proc/self/clear_refs, psutil otherwise."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.can_reset = os.access("/proc/self/clear_refs", os.W_OK)

    def start(self) -> float:
        if self.can_reset:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                self.can_reset = False
        self.before = self.proc.memory_info().rss / 1e6
        return self.before

    def peak_mb(self) -> float:
        now = self.proc.memory_info().rss / 1e6
        if self.can_reset:
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return max(now, int(line.split()[1]) * 1024 / 1e6)
            except OSError:
                pass
        try:  # without a resettable high-water mark: the lifetime peak (an upper bound)
            import resource

            return max(now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3)
        except Exception:  # noqa: BLE001
            return now


@dataclass
class Readings:
    """What the trackers of one span measured (filled as each tracker closes)."""

    energy: Any = None                      # the meter's Measurement of the window
    rss_before_mb: float = float("nan")
    peak_rss_mb: float = float("nan")
    cuda_max_alloc_mb: float = float("nan")


@contextlib.contextmanager
def energy_window(meter: Any, label: str, readings: Readings) -> Iterator[None]:
    meter.begin_window(label)
    try:
        yield
    finally:
        readings.energy = meter.end_window(label)


@contextlib.contextmanager
def peak_rss(rss: PeakRSS, readings: Readings) -> Iterator[None]:
    readings.rss_before_mb = rss.start()
    try:
        yield
    finally:
        readings.peak_rss_mb = rss.peak_mb()


@contextlib.contextmanager
def cuda_memory(device: Any, readings: Readings) -> Iterator[None]:
    """Peak allocated CUDA memory over the span (NaN on a CPU)."""
    if getattr(device, "type", None) != "cuda":
        yield
        return
    import torch

    torch.cuda.reset_peak_memory_stats(device)
    try:
        yield
    finally:
        torch.cuda.synchronize(device)
        readings.cuda_max_alloc_mb = torch.cuda.max_memory_allocated(device) / 1e6


@contextlib.contextmanager
def track_repeat(meter: Any, device: Any, rss: PeakRSS, label: str) -> Iterator[Readings]:
    """CUDA peak memory, peak RSS and the energy window around one timed repeat (innermost: energy)."""
    readings = Readings()
    with contextlib.ExitStack() as stack:
        stack.enter_context(cuda_memory(device, readings))
        stack.enter_context(peak_rss(rss, readings))
        stack.enter_context(energy_window(meter, label, readings))
        yield readings


def close_all(stack: contextlib.ExitStack, meters: dict[str, Any]) -> None:
    """Register the energy meters on ``stack`` so that they close however the run ends."""
    for m in meters.values():
        stack.callback(m.close)
