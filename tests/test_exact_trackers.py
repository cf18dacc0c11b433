"""bench.trackers with stand-ins for torch, psutil, /proc and the meter: the arithmetic of the contention flag,
peak memory and stage timing against numbers set here (no torch, no real counters)."""
from __future__ import annotations

import contextlib
import math
import sys
import time
from collections import namedtuple
from types import SimpleNamespace

import pytest

from bench import trackers
from bench.trackers import (CONTENTION_MIN_S, CONTENTION_THRESHOLD_CORES, Contention, PeakRSS, Readings, StageClock,
                            _busy_s, _freq_mhz, _own_s, close_all, contention, cuda_memory, track_repeat)

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")


class FakeCuda:
    def __init__(self, log: list) -> None:
        self.log = log

    def synchronize(self, device: object) -> None:
        self.log.append(("sync", device))

    def Event(self, enable_timing: bool) -> SimpleNamespace:  # noqa: N802 - torch's name
        self.log.append(("event", enable_timing))
        return SimpleNamespace(record=lambda: self.log.append("record"))

    def reset_peak_memory_stats(self, device: object) -> None:
        self.log.append(("reset", device))

    def max_memory_allocated(self, device: object) -> int:
        self.log.append(("max", device))
        return 5_000_000


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> list:
    log: list = []
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=FakeCuda(log)))
    return log


def test_contention_arithmetic() -> None:
    c = Contention(window_s=2.0, system_busy_s=3.0, own_cpu_s=2.5, n_cpus=4, cpu_freq_mhz=1000.0)
    assert c.others_cpu_s == 0.5
    assert c.others_cpu_share == 0.5 / 8.0
    assert c.others_cores == 0.25
    assert c.contended is True
    assert c.as_dict() == {"others_cpu_s": 0.5, "others_cpu_share": 0.0625, "cpu_freq_mhz": 1000.0,
                           "contended": True, "window_s": 2.0, "system_busy_s": 3.0, "own_cpu_s": 2.5, "n_cpus": 4}


def test_contention_never_negative_and_nan_without_a_window() -> None:
    c = Contention(0.0, 1.0, 2.0, 2, float("nan"))
    assert c.others_cpu_s == 0.0
    assert math.isnan(c.others_cpu_share) and math.isnan(c.others_cores) and c.contended is False
    assert math.isnan(Contention(1.0, 1.0, 0.0, 0, 0.0).others_cpu_share)      # no CPUs: no share
    assert Contention(1.0, 1.0, 0.0, 1, 0.0).others_cpu_share == 1.0


def test_contended_thresholds_are_strict() -> None:
    assert (CONTENTION_THRESHOLD_CORES, CONTENTION_MIN_S) == (0.10, 0.05)
    # exactly 0.10 cores (0.125 s over 1.25 s): not contended; a little more is
    assert Contention(1.25, 0.375, 0.25, 8, 0.0).others_cores == 0.1
    assert Contention(1.25, 0.375, 0.25, 8, 0.0).contended is False
    assert Contention(1.25, 0.5, 0.25, 8, 0.0).contended is True
    # exactly 0.05 s of others' time (0.5 cores over 0.1 s): too little time to flag
    assert Contention(0.1, 0.05, 0.0, 8, 0.0).contended is False
    assert Contention(0.1, 0.0625, 0.0, 8, 0.0).contended is True
    # plenty of time but under 0.10 cores
    assert Contention(100.0, 5.0, 0.0, 8, 0.0).contended is False


def test_busy_own_and_frequency_readers() -> None:
    t = CpuTimes(user=1.0, nice=2.0, system=4.0, idle=100.0, iowait=50.0, irq=8.0, softirq=16.0, steal=32.0,
                 guest=64.0, guest_nice=128.0)
    assert _busy_s(t) == 1 + 2 + 4 + 8 + 16 + 32
    assert _own_s(SimpleNamespace(cpu_times=lambda: SimpleNamespace(user=1.5, system=0.25, children_user=9))) == 1.75
    ps = SimpleNamespace(cpu_freq=lambda: SimpleNamespace(current=2400.0))
    assert _freq_mhz(ps) == 2400.0
    assert math.isnan(_freq_mhz(SimpleNamespace(cpu_freq=lambda: None)))
    assert math.isnan(_freq_mhz(SimpleNamespace(cpu_freq=lambda: SimpleNamespace(current=0.0))))

    def boom() -> None:
        raise OSError("no cpufreq")
    assert math.isnan(_freq_mhz(SimpleNamespace(cpu_freq=boom)))


class FakePsutil:
    """Two readings per counter: at the start and the end of the window."""

    def __init__(self, busy: list[float], own: list[tuple[float, float]], freqs: list, count: int | None) -> None:
        self.busy, self.own, self.freqs, self.count = list(busy), list(own), list(freqs), count

    def Process(self) -> SimpleNamespace:  # noqa: N802 - psutil's name
        return SimpleNamespace(cpu_times=lambda: SimpleNamespace(user=self.own[0][0], system=self.own.pop(0)[1]))

    def cpu_times(self) -> CpuTimes:
        return CpuTimes(self.busy.pop(0), 0, 0, 1000.0, 0, 0, 0, 0, 0, 0)

    def cpu_freq(self) -> SimpleNamespace | None:
        f = self.freqs.pop(0)
        return None if f is None else SimpleNamespace(current=f)

    def cpu_count(self) -> int | None:
        return self.count


def run_contention(monkeypatch: pytest.MonkeyPatch, ps: FakePsutil, clock: list[float]) -> Contention:
    monkeypatch.setitem(sys.modules, "psutil", ps)
    ticks = iter(clock)
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))
    r = Readings()
    with contention(r):
        pass
    return r.contention


def test_contention_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # busy 10 -> 13.5, own (1 + 0.5) -> (3 + 1), clock 5 -> 7: window 2 s, system 3.5 s, own 2.5 s
    c = run_contention(monkeypatch, FakePsutil([10.0, 13.5], [(1.0, 0.5), (3.0, 1.0)], [1000.0, 2000.0], 4),
                       [5.0, 7.0])
    assert (c.window_s, c.system_busy_s, c.own_cpu_s, c.n_cpus, c.cpu_freq_mhz) == (2.0, 3.5, 2.5, 4, 1500.0)
    assert c.others_cpu_s == 1.0


def test_contention_window_missing_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    c = run_contention(monkeypatch, FakePsutil([0.0, 1.0], [(0.0, 0.0), (0.0, 0.0)], [None, 3000.0], None),
                       [0.0, 1.0])
    assert c.n_cpus == 1 and c.cpu_freq_mhz == 3000.0
    c = run_contention(monkeypatch, FakePsutil([0.0, 1.0], [(0.0, 0.0), (0.0, 0.0)], [None, None], 2),
                       [0.0, 1.0])
    assert math.isnan(c.cpu_freq_mhz)


def test_stage_clock(fake_torch: list) -> None:
    cpu = StageClock(SimpleNamespace(type="cpu"))
    cpu.sync()
    assert cpu.cuda is False and cpu.event() is None and fake_torch == []
    assert math.isnan(cpu.events_s())
    assert cpu.events == []
    dev = SimpleNamespace(type="cuda")
    gpu = StageClock(dev)
    gpu.sync()
    e = gpu.event()
    assert gpu.device is dev and gpu.cuda is True and fake_torch == [("sync", dev), ("event", True), "record"]
    assert e is not None
    pair = SimpleNamespace(elapsed_time=lambda other: other)      # milliseconds from a to b
    gpu.events = [(pair, 1500.0), (pair, 500.0)]
    assert gpu.events_s() == 2.0


def test_cuda_memory(fake_torch: list) -> None:
    r = Readings()
    with cuda_memory(SimpleNamespace(type="cpu"), r):
        pass
    assert math.isnan(r.cuda_max_alloc_mb) and fake_torch == []
    with cuda_memory(object(), r):
        pass
    assert fake_torch == []
    dev = SimpleNamespace(type="cuda")
    with cuda_memory(dev, r):
        fake_torch.append("pass")
    assert fake_torch == [("reset", dev), "pass", ("sync", dev), ("max", dev)]
    assert r.cuda_max_alloc_mb == 5.0


class FakeProc:
    def __init__(self, rss: list[float]) -> None:
        self.rss = list(rss)

    def memory_info(self) -> SimpleNamespace:
        return SimpleNamespace(rss=self.rss.pop(0))


class FakePath:
    """Stands for pathlib.Path in bench.trackers: /proc files with set contents."""

    written: list = []
    status = "Name:\tpython\nVmPeak:\t 9999 kB\nVmHWM:\t  2000 kB\nVmRSS:\t 1000 kB\n"
    fail = False

    def __init__(self, p: str) -> None:
        self.p = p

    def write_text(self, s: str) -> None:
        if self.fail or self.p != "/proc/self/clear_refs":
            raise OSError("read-only")
        FakePath.written.append((self.p, s))

    def read_text(self) -> str:
        if self.fail or self.p != "/proc/self/status":
            raise OSError("gone")
        return self.status


def peak(monkeypatch: pytest.MonkeyPatch, rss: list[float], can_reset: bool, fail: bool = False,
         maxrss_kb: float = 0.0) -> tuple[PeakRSS, float, float]:
    monkeypatch.setattr(trackers, "Path", FakePath)
    monkeypatch.setattr(FakePath, "fail", fail)
    monkeypatch.setattr(FakePath, "written", [])
    import resource
    monkeypatch.setattr(resource, "getrusage",
                        lambda who: SimpleNamespace(ru_maxrss=maxrss_kb if who == resource.RUSAGE_SELF else -1.0))
    p = PeakRSS()
    p.proc, p.can_reset = FakeProc(rss), can_reset
    return p, p.start(), p.peak_mb()


def test_peak_rss_init(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list = []
    monkeypatch.setattr(trackers.os, "access", lambda p, mode: asked.append((p, mode)) or p == "/proc/self/clear_refs")
    proc = object()
    monkeypatch.setitem(sys.modules, "psutil", SimpleNamespace(Process=lambda: proc))
    p = PeakRSS()
    assert p.proc is proc and p.can_reset is True and asked == [("/proc/self/clear_refs", trackers.os.W_OK)]


def test_peak_rss_from_vmhwm(monkeypatch: pytest.MonkeyPatch) -> None:
    # VmHWM 2000 kB = 2000 x 1024 B = 2.048 MB, above the 1.5 MB now
    p, before, top = peak(monkeypatch, [1e6, 1.5e6], can_reset=True)
    assert FakePath.written == [("/proc/self/clear_refs", "5")]
    assert before == 1.0 and p.before == 1.0 and top == 2.048
    # now above the high-water mark reading: now wins
    _, _, top = peak(monkeypatch, [1e6, 3e6], can_reset=True)
    assert top == 3.0


def test_peak_rss_without_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    # ru_maxrss is in kB on Linux: 4000 kB = 4 MB, the lifetime peak
    p, before, top = peak(monkeypatch, [1e6, 2e6], can_reset=False, maxrss_kb=4000.0)
    assert FakePath.written == [] and (before, top) == (1.0, 4.0)
    _, _, top = peak(monkeypatch, [1e6, 5e6], can_reset=False, maxrss_kb=4000.0)
    assert top == 5.0
    # clear_refs not writable after all: falls back, and remembers it
    p, _, top = peak(monkeypatch, [1e6, 2e6], can_reset=True, fail=True, maxrss_kb=3000.0)
    assert p.can_reset is False and top == 3.0


def test_peak_rss_unreadable_status_and_rusage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trackers, "Path", FakePath)
    p = PeakRSS()
    p.proc, p.can_reset = FakeProc([1e6, 2e6]), True
    p.start()
    monkeypatch.setattr(FakePath, "fail", True)
    import resource

    def no_rusage(who: int) -> None:
        raise RuntimeError("no rusage")
    monkeypatch.setattr(resource, "getrusage", no_rusage)
    assert p.peak_mb() == 2.0


class Log:
    def __init__(self) -> None:
        self.calls: list[str] = []


def test_track_repeat_order_and_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()
    meter = SimpleNamespace(begin_window=lambda label: log.calls.append(f"begin {label}"),
                            end_window=lambda label: log.calls.append(f"end {label}") or "J")
    rss = SimpleNamespace(start=lambda: log.calls.append("rss start") or 10.0,
                          peak_mb=lambda: log.calls.append("rss peak") or 12.0)

    @contextlib.contextmanager
    def fake_contention(readings: Readings):
        log.calls.append("contention start")
        yield
        log.calls.append("contention end")
        readings.contention = "C"
    monkeypatch.setattr(trackers, "contention", fake_contention)
    with track_repeat(meter, SimpleNamespace(type="cpu"), rss, "rep0") as r:
        log.calls.append("pass")
    assert log.calls == ["rss start", "contention start", "begin rep0", "pass", "end rep0", "contention end",
                         "rss peak"]
    assert (r.energy, r.rss_before_mb, r.peak_rss_mb, r.contention) == ("J", 10.0, 12.0, "C")
    assert math.isnan(r.cuda_max_alloc_mb)


def test_track_repeat_closes_windows_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()
    meter = SimpleNamespace(begin_window=lambda label: log.calls.append("begin"),
                            end_window=lambda label: log.calls.append("end") or "J")
    rss = SimpleNamespace(start=lambda: 1.0, peak_mb=lambda: log.calls.append("peak") or 2.0)
    with pytest.raises(RuntimeError):
        with track_repeat(meter, SimpleNamespace(type="cpu"), rss, "x"):
            raise RuntimeError("pass failed")
    assert log.calls == ["begin", "end", "peak"]


def test_readings_defaults_and_close_all() -> None:
    r = Readings()
    assert r.energy is None and r.contention is None
    assert all(math.isnan(v) for v in (r.rss_before_mb, r.peak_rss_mb, r.cuda_max_alloc_mb))
    closed: list[str] = []
    meters = {k: SimpleNamespace(close=lambda k=k: closed.append(k)) for k in ("a", "b")}
    with contextlib.ExitStack() as stack:
        close_all(stack, meters)
        assert closed == []
    assert sorted(closed) == ["a", "b"]
