"""The runner's parts: scenarios (plans, weights, workloads), a pass's end-to-end sum, and trackers that close
however the pass ends."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from bench import scenarios
from bench.scenarios import PassResult
from bench.trackers import PeakRSS, track_repeat


class _Meter:
    scope = "process"

    def __init__(self) -> None:
        self.events: list[str] = []

    def begin_window(self, name: str) -> None:
        self.events.append(f"begin {name}")

    def end_window(self, name: str) -> str:
        self.events.append(f"end {name}")
        return f"measurement of {name}"


def test_scenarios_own_plan_weights_and_workload() -> None:
    tr = SimpleNamespace(plan=lambda durs: [[1, 0], [2]])
    durs = [1.0, 2.0, 3.0]
    assert scenarios.BATCHED.plan(tr, durs) == [[1, 0], [2]]
    assert scenarios.PAPER_LOOP.plan(tr, durs) == [[0], [1], [2]]
    assert [s.weights for s in (scenarios.BATCHED, scenarios.PAPER_LOOP, scenarios.ARCH)] == \
        ["trained", "trained", "random"]
    assert scenarios.for_spec("arch-large-L12") is scenarios.ARCH and scenarios.for_spec("embedded").name == "batched"
    assert scenarios.get("paper-loop") is scenarios.PAPER_LOOP and scenarios.get(scenarios.ARCH) is scenarios.ARCH
    with pytest.raises(ValueError, match="unknown scenario"):
        scenarios.get("streaming")
    data, gen = SimpleNamespace(fraction=1.0), SimpleNamespace(fraction=0.01)
    assert scenarios.BATCHED.workload(data, {"cpu": gen}, "cpu") is data
    assert scenarios.ARCH.workload(data, {"cpu": gen}, "cpu") is gen
    assert scenarios.ARCH.workload_fraction(gen) == 0.01 and scenarios.BATCHED.workload_fraction(gen) == 1.0
    assert scenarios.arch_fraction(None, is_cuda=False) == 0.01 and scenarios.arch_fraction(None, is_cuda=True) == 1
    assert scenarios.arch_fraction(0.2, is_cuda=True) == 0.2


@pytest.mark.parametrize("decode, want", [(1.0, 7.0), (float("nan"), 6.0), (None, 6.0)])
def test_e2e_is_the_stage_sum(decode, want) -> None:  # noqa: ANN001
    r = PassResult(wall_s=9.0, decode_s=decode, inputs_s=1.0, model_s=3.0, text_s=2.0, model_s_cuda_events=math.nan,
                   n_utts=1, audio_s=1.0)
    assert r.e2e_s == want


def test_trackers_close_when_the_pass_fails() -> None:
    import torch

    meter = _Meter()
    with pytest.raises(RuntimeError):
        with track_repeat(meter, torch.device("cpu"), PeakRSS(), "v|cpu|0") as r:
            raise RuntimeError("pass failed")
    assert meter.events == ["begin v|cpu|0", "end v|cpu|0"]
    assert r.energy == "measurement of v|cpu|0" and r.peak_rss_mb >= r.rss_before_mb > 0
    assert math.isnan(r.cuda_max_alloc_mb)  # a CPU: no CUDA peak
