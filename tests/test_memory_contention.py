"""Issue 14, findings 4 and 6 without a GPU or a busy machine: the heaviest batch, the CUDA path of
variant_peak_mb with a faked torch.cuda, the fallback label, and the contention tracker with faked counters."""
from __future__ import annotations

import math
from collections import namedtuple

import pytest

from bench import memory, trackers
from bench.rows import _contention_fields


def test_heaviest_batch_is_longest_padded_audio_times_batch() -> None:
    durations = [1.0, 2.0, 8.0, 3.0, 3.0, 3.0]
    assert memory.heaviest_batch([[0, 1], [2], [3, 4, 5]], durations) == [3, 4, 5]  # 3 x 3 s > 1 x 8 s
    assert memory.heaviest_batch([[0, 1], [2]], durations) == [2]
    assert memory.heaviest_batch([], durations) == []


class _FakeTr:
    def __init__(self, alloc) -> None:  # noqa: ANN001
        self.alloc = alloc

    def make_inputs(self, audio):  # noqa: ANN001, ANN201
        return audio

    def forward(self, inputs):  # noqa: ANN001, ANN201
        self.alloc(300e6)  # activations of the batch


def test_cuda_peak_is_max_allocated_reset_after_load_over_the_baseline(monkeypatch) -> None:  # noqa: ANN001
    import torch

    state = {"now": 1000e6, "peak": 5000e6}  # 5 GB peak left by earlier variants, 1 GB still resident

    def alloc(n: float) -> None:
        state["peak"] = max(state["peak"], state["now"] + n)

    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: state["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: state["peak"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: state.update(peak=state["now"]))
    base = memory.baseline("cuda:0")
    state["now"] += 200e6  # the variant's weights
    out = memory.peak_over(_FakeTr(alloc), [], "cuda:0", base, "inprocess")
    assert out["variant_peak_mb"] == pytest.approx(500.0)  # weights 200 + activations 300, not the 5 GB
    assert out["variant_peak_method"] == "inprocess-cuda-max-alloc-delta"
    child = memory.peak_over(_FakeTr(alloc), [], "cuda:0", base, "child")
    assert child["variant_peak_method"] == "child-cuda-max-alloc"


def test_unpicklable_loader_falls_back_and_says_why(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(memory, "peak_over", lambda tr, audio, dev, base, prefix: {
        "variant_peak_mb": 1.0, "variant_peak_method": f"{prefix}-vmhwm-delta"})
    out = memory.measure_variant(lambda s, d: None, "x", "cpu", [], 1, 1.0, 1, loaded_tr=object(), base_mb=10.0)
    assert out["variant_peak_method"] == "inprocess-vmhwm-delta" and "does not pickle" in out["reason"]
    assert memory.picklable(memory.measure_variant) and not memory.picklable(lambda: 0)


CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")
ProcTimes = namedtuple("ProcTimes", "user system")


def _fake_psutil(monkeypatch, sys_busy: list[float], own: list[float], freq=None) -> None:  # noqa: ANN001
    import psutil

    it_sys, it_own = iter(sys_busy), iter(own)
    monkeypatch.setattr(psutil, "cpu_times", lambda: CpuTimes(next(it_sys), 0, 0, 100, 1, 0, 0, 0, 5, 0))
    monkeypatch.setattr(psutil, "cpu_count", lambda *a, **k: 4)
    monkeypatch.setattr(psutil, "cpu_freq", lambda *a, **k: freq)

    class P:
        def cpu_times(self):  # noqa: ANN201
            return ProcTimes(next(it_own), 0.0)

    monkeypatch.setattr(psutil, "Process", P)


def test_contention_is_system_busy_minus_own_and_flags_above_threshold(monkeypatch) -> None:  # noqa: ANN001
    import time

    _fake_psutil(monkeypatch, [10.0, 14.0], [1.0, 4.0], freq=namedtuple("F", "current")(2400.0))
    ticks = iter([0.0, 2.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))
    r = trackers.Readings()
    with trackers.contention(r):
        pass
    c = r.contention
    # busy 4 s over the window, 3 s of them ours (guest time is not counted twice): others 1 s in 2 s on 4 CPUs
    assert c.others_cpu_s == pytest.approx(1.0) and c.others_cpu_share == pytest.approx(1.0 / 8)
    assert c.others_cores == pytest.approx(0.5) and c.contended and c.cpu_freq_mhz == 2400.0
    quiet = trackers.Contention(window_s=2.0, system_busy_s=3.1, own_cpu_s=3.0, n_cpus=4, cpu_freq_mhz=float("nan"))
    assert not quiet.contended  # 0.05 core: background daemons
    short = trackers.Contention(window_s=0.1, system_busy_s=0.04, own_cpu_s=0.0, n_cpus=4, cpu_freq_mhz=1.0)
    assert short.others_cores > trackers.CONTENTION_THRESHOLD_CORES and not short.contended  # tick granularity


def test_unreadable_frequency_is_nan_and_ranks_subtract_each_other(monkeypatch) -> None:  # noqa: ANN001
    _fake_psutil(monkeypatch, [0.0, 1.0], [0.0, 1.0], freq=None)
    r = trackers.Readings()
    with trackers.contention(r):
        pass
    assert math.isnan(r.contention.cpu_freq_mhz)
    # two ranks on one host: each sees the other's CPU time as "others"; the row subtracts both
    a = {"window_s": 1.0, "system_busy_s": 2.0, "own_cpu_s": 1.0, "n_cpus": 4, "cpu_freq_mhz": float("nan")}
    row = _contention_fields([a, {**a, "system_busy_s": 2.01}])
    assert row["others_cpu_s"] == pytest.approx(0.01) and not row["contended"] and math.isnan(row["cpu_freq_mhz"])
