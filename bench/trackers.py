"""Trackers around a timed pass: stage clock, peak RSS, the energy window, CUDA memory, others' CPU use.

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
    contention: dict[str, Any] | None = None  # the rest of the machine's CPU use over the window (Contention)


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


# Others' CPU use above which a repeat is flagged ``contended``, in cores averaged over the repeat.  Why 0.10:
# an idle Linux host's daemons use ~0.01-0.05 of a core, so 0.10 is above that floor; torch's intra-op threads
# run on every core and each parallel region waits for its slowest thread, so a process holding one core for a
# share f of the window can slow the forward pass by up to ~f: 0.10 is where that worst case reaches the few-%
# repeat-to-repeat spread the tables report.  CONTENTION_MIN_S keeps short repeats from being flagged by the
# counters' granularity (USER_HZ = 100: 10 ms per tick, a few ticks of rounding per window).
CONTENTION_THRESHOLD_CORES = 0.10
CONTENTION_MIN_S = 0.05
_IDLE_FIELDS = ("idle", "iowait")  # everything else in /proc/stat (incl. steal: a hypervisor's other guests) is busy


def _busy_s(t: Any) -> float:
    d = t._asdict()
    # guest time is already counted in user (Linux), so it is left out to avoid counting it twice
    return sum(v for k, v in d.items() if k not in _IDLE_FIELDS and k not in ("guest", "guest_nice"))


def _own_s(proc: Any) -> float:
    t = proc.cpu_times()  # every thread of this process
    return t.user + t.system


def _freq_mhz(psutil: Any) -> float:
    try:
        f = psutil.cpu_freq()
        return float(f.current) if f and f.current else float("nan")
    except Exception:  # noqa: BLE001 - not readable in many containers and VMs
        return float("nan")


@dataclass
class Contention:
    """The rest of the machine's CPU time over a window: system-wide busy seconds minus this process's."""

    window_s: float
    system_busy_s: float
    own_cpu_s: float
    n_cpus: int
    cpu_freq_mhz: float

    @property
    def others_cpu_s(self) -> float:
        return max(0.0, self.system_busy_s - self.own_cpu_s)

    @property
    def others_cpu_share(self) -> float:
        """Of the window's core-seconds (window x logical CPUs)."""
        cap = self.window_s * self.n_cpus
        return self.others_cpu_s / cap if cap > 0 else float("nan")

    @property
    def others_cores(self) -> float:
        """Others' use in cores, averaged over the window (the flag's unit)."""
        return self.others_cpu_s / self.window_s if self.window_s > 0 else float("nan")

    @property
    def contended(self) -> bool:
        return self.others_cpu_s > CONTENTION_MIN_S and self.others_cores > CONTENTION_THRESHOLD_CORES

    def as_dict(self) -> dict[str, Any]:
        return {"others_cpu_s": self.others_cpu_s, "others_cpu_share": self.others_cpu_share,
                "cpu_freq_mhz": self.cpu_freq_mhz, "contended": self.contended, "window_s": self.window_s,
                "system_busy_s": self.system_busy_s, "own_cpu_s": self.own_cpu_s, "n_cpus": self.n_cpus}


@contextlib.contextmanager
def contention(readings: Readings) -> Iterator[None]:
    """Others' CPU time and the CPU frequency (mean of the readings at both ends) over the span."""
    import time

    import psutil

    proc = psutil.Process()
    f0 = _freq_mhz(psutil)
    t0, sys0, own0 = time.perf_counter(), _busy_s(psutil.cpu_times()), _own_s(proc)
    try:
        yield
    finally:
        sys1, own1, t1 = _busy_s(psutil.cpu_times()), _own_s(proc), time.perf_counter()
        f1 = _freq_mhz(psutil)
        freqs = [f for f in (f0, f1) if f == f]
        readings.contention = Contention(t1 - t0, sys1 - sys0, own1 - own0, psutil.cpu_count() or 1,
                                         sum(freqs) / len(freqs) if freqs else float("nan"))


@contextlib.contextmanager
def track_repeat(meter: Any, device: Any, rss: PeakRSS, label: str) -> Iterator[Readings]:
    """CUDA peak memory, peak RSS, others' CPU use and the energy window around one timed repeat (innermost:
    energy)."""
    readings = Readings()
    with contextlib.ExitStack() as stack:
        stack.enter_context(cuda_memory(device, readings))
        stack.enter_context(peak_rss(rss, readings))
        stack.enter_context(contention(readings))
        stack.enter_context(energy_window(meter, label, readings))
        yield readings


def close_all(stack: contextlib.ExitStack, meters: dict[str, Any]) -> None:
    """Register the energy meters on ``stack`` so that they close however the run ends."""
    for m in meters.values():
        stack.callback(m.close)
