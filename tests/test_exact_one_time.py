"""One-time costs and break-even audio in ``bench.ratios`` against hand-computed values (no torch).

Teacher ``t``: load 3 s; unseen 0.1 s of model time per audio second (2 s over 20 s), e2e 0.11.
``v``: load 30 s (compile 25 + export 2 inside it), unseen model 0.04, e2e 0.06 s per audio second:
model (30 - 3) / ((0.1 - 0.04) x 3600) = 0.125 h; e2e 27 / ((0.11 - 0.06) x 3600) = 0.15 h.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.ratios import _costs_table, _hours, one_time

NAN = float("nan")


def _row(variant: str, scenario: str, model_s: float, e2e_s: float, audio_s: float, load_s: float,
         compile_s: float = NAN, calibration_s: float = NAN, export_s: float = NAN, cache: str = "",
         device: str = "cpu") -> dict:
    return dict(variant=variant, device=device, scenario=scenario, model_s=model_s, e2e_s=e2e_s, audio_s=audio_s,
                load_s=load_s, compile_s=compile_s, calibration_s=calibration_s, export_s=export_s,
                compile_cache=cache)


@pytest.fixture
def df() -> pd.DataFrame:
    rows = [
        _row("t", "batched", 10.0, 11.0, 100.0, 3.0), _row("t", "batched", 10.0, 11.0, 100.0, 3.0),
        _row("t", "unseen", 2.0, 2.2, 20.0, 3.0), _row("t", "unseen", 2.0, 2.2, 20.0, 3.0),
        # the median of the two unseen repeats: (0.7 + 0.9) / 2 / 20 = 0.04 s per audio second
        _row("v", "batched", 4.0, 5.0, 100.0, 30.0, 25.0, NAN, 2.0, "warm"),
        _row("v", "unseen", 0.7, 1.2, 20.0, 30.0, 25.0, NAN, 2.0, "warm"),
        _row("v", "unseen", 0.9, 1.2, 20.0, 30.0, 25.0, NAN, 2.0, "warm"),
        # slower than the teacher on model time (0.12 > 0.1), faster end to end (0.10 < 0.11), cheaper to load
        _row("s", "unseen", 2.4, 2.0, 20.0, 1.0),
        # no unseen rows: break-even on warm times, 5/100 = 0.05 vs 0.1: (12 - 3) / 180 = 0.05 h
        _row("b", "batched", 5.0, 5.5, 100.0, 12.0),
        # the parts' sum beats a shorter load (built earlier): 40 + 8 = 48 s
        _row("p", "batched", 5.0, 5.5, 100.0, 1.0, 40.0, 8.0),
        _row("g", "batched", 1.0, 1.0, 100.0, 2.0, device="cuda"),
    ]
    return pd.DataFrame(rows)


def test_break_even_on_unseen_times(df: pd.DataFrame) -> None:
    o = one_time(df, "v", "cpu", "t")
    assert o["one_time_s"] == 30.0 and o["load_s"] == 30.0 and o["compile_s"] == 25.0 and o["export_s"] == 2.0
    assert math.isnan(o["calibration_s"]) and o["compile_cache"] == "warm"
    assert o["break_even_scenario"] == "unseen" and o["is_teacher"] is False
    assert o["break_even_h_model"] == pytest.approx(27 / 216) and o["break_even_h_e2e"] == pytest.approx(27 / 180)


def test_never_and_zero(df: pd.DataFrame) -> None:
    o = one_time(df, "s", "cpu", "t")
    assert o["break_even_h_model"] == math.inf           # not faster
    assert o["break_even_h_e2e"] == 0.0                 # faster and cheaper up front


def test_warm_times_when_no_unseen_rows(df: pd.DataFrame) -> None:
    o = one_time(df, "b", "cpu", "t")
    assert o["break_even_scenario"] == "batched"
    assert o["break_even_h_model"] == pytest.approx(9 / 180)
    assert o["break_even_h_e2e"] == pytest.approx(9 / ((0.11 - 0.055) * 3600))


def test_parts_sum_when_larger_than_the_load(df: pd.DataFrame) -> None:
    assert one_time(df, "p", "cpu", "t")["one_time_s"] == 48.0


def test_teacher_unknown_variant_and_no_teacher(df: pd.DataFrame) -> None:
    t = one_time(df, "t", "cpu", "t")
    assert t["is_teacher"] is True and t["break_even_h_model"] == 0.0 and t["break_even_h_e2e"] == 0.0
    assert one_time(df, "nope", "cpu", "t") is None
    assert one_time(df, "v", "cuda", "t") is None
    bare = one_time(df, "v", "cpu", None)
    assert bare["one_time_s"] == 30.0 and "break_even_h_model" not in bare and "is_teacher" not in bare
    assert one_time(df, "g", "cuda", "t")["break_even_h_model"] != one_time(df, "g", "cuda", "t")["break_even_h_model"]


def test_hours_format() -> None:
    assert _hours(NAN) == "n/a" and _hours(math.inf) == "never (not faster)"
    assert _hours(0.125) == "0.125 h" and _hours(12.345) == "12.3 h" and _hours(0.0) == "0 h"


def test_costs_table_lines(df: pd.DataFrame) -> None:
    costs = [one_time(df, v, "cpu", "t") for v in ("t", "v", "s")] + [one_time(df, "v", "cpu", None)]
    lines = _costs_table(costs)
    assert lines[0].startswith("one-time cost per process (load includes what was compiled")
    assert lines[1] == f"  {'cpu':<5} {'t':<46} 3.0 s (load 3.0 s); the reference for break-even"
    assert lines[2] == (f"  {'cpu':<5} {'v':<46} 30.0 s (load 30.0 s, compile 25.0 s, export 2.0 s; cache warm); "
                        "break-even (unseen) model 0.125 h, e2e 0.15 h")
    assert lines[3] == (f"  {'cpu':<5} {'s':<46} 1.0 s (load 1.0 s); "
                        "break-even (unseen) model never (not faster), e2e 0 h")
    assert lines[4] == f"  {'cpu':<5} {'v':<46} 30.0 s (load 30.0 s, compile 25.0 s, export 2.0 s; cache warm)"
    assert len(lines) == 5 and _costs_table([]) == []


def test_compute_pairs_unseen_rows_and_lists_one_time_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    """compute(): warm (batched) and unseen vs-teacher ratios side by side, and a one-time cost per variant (not
    per scenario row, arch row or v@paper-loop row) with its break-even, shown by format_report."""
    from bench.ratios import compute, format_report
    import core.results

    def r(v: str, scenario: str, model_s: float, e2e_s: float, audio_s: float, load_s: float) -> dict:
        return dict(_row(v, scenario, model_s, e2e_s, audio_s, load_s), repeat=0, wer=0.1)
    rows = [r("teacher", "batched", 10.0, 11.0, 100.0, 3.0), r("teacher", "unseen", 2.0, 2.2, 20.0, 3.0),
            r("v", "batched", 4.0, 5.0, 100.0, 30.0), r("v", "unseen", 0.8, 1.2, 20.0, 30.0),
            r("v@paper-loop", "batched", 8.0, 9.0, 100.0, 30.0), r("arch-large-L2", "batched", 1.0, 1.0, 1.0, 1.0)]
    for with_scenario in (True, False):
        df = pd.DataFrame(rows if with_scenario else [x for x in rows if x["scenario"] == "batched"])
        monkeypatch.setattr(core.results, "load_results", lambda d, df=df: df if with_scenario else
                            df.drop(columns=["scenario"]))
        monkeypatch.setattr(core.results, "read_meta", lambda d: {})
        res = compute("RUN")
        vs = {(x["scenario"], x["metric"]): x for x in res["ratios"] if x["kind"] == "vs-teacher" and x["a"] == "v"}
        # warm: model 10/4 = 2.5, e2e 11/5 = 2.2; unseen (per second of 20 s): model 2/0.8 = 2.5, e2e 2.2/1.2
        want = {("batched", "rtfx (model only)"): 2.5, ("batched", "end-to-end"): 2.2}
        if with_scenario:
            want |= {("unseen", "rtfx (model only)"): 2.5, ("unseen", "end-to-end"): 2.2 / 1.2}
        assert {k: x["median_ratio"] for k, x in vs.items()} == pytest.approx(want)
        assert all(x["b"] == "teacher" for x in vs.values())
        costs = {c["variant"]: c for c in res["one_time"]}
        assert sorted(costs) == ["teacher", "v"]
        t, v = costs["teacher"], costs["v"]
        assert (t["one_time_s"], t["is_teacher"], t["break_even_h_model"]) == (3.0, True, 0.0)
        assert v["one_time_s"] == 30.0 and v["compile_cache"] == ""
        # unseen: (30 - 3) / ((0.1 - 0.04) x 3600) = 0.125 h; warm: 27 / ((0.1 - 0.04) x 3600) as well, e2e
        # unseen 27 / ((0.11 - 0.06) x 3600) = 0.15 h, warm 27 / ((0.11 - 0.05) x 3600) = 0.125 h
        assert v["break_even_scenario"] == ("unseen" if with_scenario else "batched")
        assert (v["break_even_h_model"], v["break_even_h_e2e"]) == pytest.approx(
            (0.125, 0.15 if with_scenario else 0.125))
        report = format_report(res)
        assert f"  {'cpu':<5} {'v':<46} 30.0 s (load 30.0 s); break-even" in report
        assert ("unseen model x2.50" in report) == with_scenario


def test_one_time_details(df: pd.DataFrame) -> None:
    # rows without a scenario count as batched; a NaN cache entry is skipped; export counts in the parts' sum
    nan_scen = df[df["variant"].isin(["t", "b"])].assign(scenario=lambda d: d["scenario"].where(d["variant"] == "t"))
    c = one_time(nan_scen.assign(compile_cache=[NAN] * 4 + ["cold"]), "b", "cpu", "t")
    assert (c["break_even_scenario"], c["break_even_h_model"], c["compile_cache"]) == ("batched", 0.05, "cold")
    assert one_time(df.assign(export_s=50.0), "v", "cpu", None)["one_time_s"] == 75.0    # 25 + 50 > the 30 s load
    cache = [""] * 4 + [NAN, "cold", "cold"] + [""] * 4                        # v's first row has no cache entry
    assert one_time(df.assign(compile_cache=cache), "v", "cpu", None)["compile_cache"] == "cold"
    # a variant with unseen rows only, against a teacher with none: warm times, of which it has none
    only_unseen = one_time(df[df["variant"] != "t"].assign(variant=lambda d: d["variant"].replace({"b": "t"})),
                           "s", "cpu", "t")
    assert only_unseen["break_even_scenario"] == "batched" and math.isnan(only_unseen["break_even_h_model"])
    lines = _costs_table([one_time(df, "p", "cpu", None), {"device": "cpu", "variant": "x", "one_time_s": NAN}])
    assert lines[1] == f"  {'cpu':<5} {'p':<46} 48.0 s (load 1.0 s, compile 40.0 s, calibration 8.0 s)"
    assert lines[2] == f"  {'cpu':<5} {'x':<46} nan s (n/a)"


def test_teacher_table_takes_the_warm_model_ratio_first() -> None:
    """The WER beside a variant comes from its warm model-time ratio, even when unseen rows come first."""
    from bench.ratios import _teacher_table

    def r(scenario: str, metric: str, wer: float) -> dict:
        return {"kind": "vs-teacher", "device": "cpu", "a": "v", "b": "t", "metric": metric, "median_ratio": 2.0,
                "per_repeat": [2.0], "wer_diff_points": wer, "scenario": scenario}
    lines = _teacher_table([r("unseen", "rtfx (model only)", 5.0), r("batched", "rtfx (model only)", 1.0)])
    assert lines[1] == f"  {'cpu':<5} {'v':<46} vs t: warm model x2.00 (2.00); unseen model x2.00 (2.00); WER +1.00 pt"
