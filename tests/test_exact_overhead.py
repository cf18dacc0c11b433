"""The tracker-overhead figure by hand: pairs over a slice of batches, the median per-pair ratio with a
distribution-free interval, and "not measured" (with why) below the minimum number of pairs."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from bench import overhead


def test_median_interval_order_statistics() -> None:
    # n = 5: min..max covers the median with 1 - 2/32 = 93.75 %; 2nd..4th only 62.5 %
    assert overhead.median_interval([0.3, 0.1, 0.0, 0.2, 0.05]) == (0.0, 0.3, 0.9375)
    # n = 10: 2nd..9th, 1 - 2 * 11/1024; 3rd..8th would be 1 - 2 * 56/1024 = 89.1 % < 90 %
    assert overhead.median_interval(list(range(10))) == (1, 8, 1 - 22 / 1024)
    assert overhead.median_interval(list(range(10)), level=0.85) == (2, 7, 1 - 112 / 1024)
    lo, hi, cov = overhead.median_interval([0.1, 0.2, 0.3, 0.4])  # 1 - 2/16 = 87.5 %: no interval at 90 %
    assert math.isnan(lo) and math.isnan(hi) and math.isnan(cov)
    assert overhead.MIN_PAIRS == 5


def test_slice_batches() -> None:
    plan = [[i] for i in range(38)]
    assert overhead.slice_batches(plan) == [[5], [15], [25], [35]]
    assert overhead.slice_batches(plan, share=0.25) == [[2], [6], [10], [14], [18], [22], [26], [30], [34]]
    assert overhead.slice_batches([[0, 1], [2]]) == [[0, 1]]  # fewer batches than a step: the first
    assert overhead.slice_batches(plan, share=1.0) == plan


def test_summarise_and_describe() -> None:
    with_s = [1.25, 1.5, 1.0, 1.125, 2.0]
    res = overhead.summarise("rapl", "teacher", with_s, [1.0] * 5, [0.01] * 5, [2.0] * 5, [1.0] * 5,
                             slice_share=0.1)
    assert res["pair_fractions"] == [0.25, 0.5, 0.0, 0.125, 1.0]
    assert res["fraction"] == 0.25 and res["interval"] == [0.0, 1.0] and res["interval_coverage"] == 0.9375
    assert res["pairs"] == 5 and res["measured"] and res["window_ops_fraction"] == 0.01
    assert res["cpu_time_fraction"] == 1.0 and res["median_with_s"] == 1.25 and res["median_without_s"] == 1.0
    assert overhead.measured_fraction(res) == 0.25
    assert overhead.describe(res) == ("rapl: +25.00 % (median of 5 paired passes over 10 % of the batches; 94 % "
                                      "interval +0.00 .. +100.00 %; window open/close 1.000 %; process CPU time "
                                      "+100.00 %)")


def test_too_few_pairs_are_not_measured() -> None:
    one = {"method": "codecarbon", "pairs": 1, "fraction": 0.0123, "with_s": [1.1], "without_s": [1.0]}
    assert overhead.describe(one) == ("codecarbon: not measured (1 pair asked for; at least 5 are needed for a "
                                      "median with an interval (--overhead-pairs))")
    assert math.isnan(overhead.measured_fraction(one))
    rec = overhead.not_measured("rapl", "teacher", 3, overhead.too_few(3))
    assert rec == {"method": "rapl", "variant": "teacher", "pairs": 3, "measured": False,
                   "why": "3 pairs asked for; at least 5 are needed for a median with an interval (--overhead-pairs)"}
    assert overhead.describe(rec).startswith("rapl: not measured (3 pairs asked for;")
    # a record saved before the per-pair ratios were kept: computed from its passes
    old = {"method": "rapl", "pairs": 5, "with_s": [1.25, 1.5, 1.0, 1.125, 2.0], "without_s": [1.0] * 5}
    assert overhead.measured_fraction(old) == 0.25 and "+25.00 % (median of 5 paired passes;" in overhead.describe(old)
    short = {"method": "rapl", "pairs": 5, "with_s": [1.0] * 4, "without_s": [1.0] * 4}
    assert overhead.describe(short) == "rapl: not measured (4 of 5 pairs timed; at least 5 are needed)"


class _Meter:
    name = "fake"

    def __init__(self, calls: list) -> None:
        self.calls = calls

    def begin_window(self, label: str) -> None:
        self.calls.append("begin")

    def end_window(self, label: str) -> None:
        self.calls.append("end")


def test_measure_runs_pairs_over_the_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.scenarios

    calls: list = []
    monkeypatch.setattr(bench.scenarios, "run_pass", lambda tr, wl, sc, audio_cache=None, batches=None:
                        calls.append(("pass", tuple(map(tuple, batches)))))
    scenario = SimpleNamespace(plan=lambda tr, durations: [[i] for i in range(len(durations))])
    entry = SimpleNamespace(tr=None, wl=SimpleNamespace(durations=[1.0] * 20), audio_cache=None,
                            job=SimpleNamespace(scenario=scenario, variant="teacher"))
    ctx = SimpleNamespace(barrier=lambda: None)
    meter = _Meter(calls)
    res = overhead.measure_overhead(entry, meter, 2, ctx)
    assert calls == [] and res["measured"] is False and res["pairs"] == 2  # too few: nothing run
    res = overhead.measure_overhead(entry, meter, 5, ctx)
    sliced = ("pass", ((5,), (15,)))
    with_window = ["begin", sliced, "end"]
    # a settle pass, then pairs alternating which goes first
    assert calls == [sliced, *with_window, sliced, sliced, *with_window, *with_window, sliced, sliced,
                     *with_window, *with_window, sliced]
    assert res["pairs"] == 5 and res["slice_batches"] == 2 and res["slice_share"] == 0.1
    assert len(res["with_s"]) == len(res["without_s"]) == len(res["pair_fractions"]) == 5
