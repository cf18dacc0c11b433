"""Issue 25 in the report: warm and unseen speed-ups side by side in Table 1b, one-time cost and break-even audio,
the labels, the Pareto plot's unseen markers and the method section's explanation."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from reports.figures import pareto
from reports.html import build_report
from reports.load import load_results, load_run
from reports.tables import all_tables, table1_ratios

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "results_small"


@pytest.fixture(scope="module")
def warm() -> pd.DataFrame:
    return load_results(FIXTURE)


def _with_unseen(df: pd.DataFrame) -> pd.DataFrame:
    """The fixture (warm) plus unseen rows for the teacher (0.2 s per audio second) and distill-L4 (0.1 s), one-time
    costs 4 s and 40 s (warm compile cache): break-even (40 - 4) / ((0.2 - 0.1) x 3600) = 0.1 h."""
    u = df[(df["device"] == "cpu") & df["variant"].isin(["teacher", "distill-L4"])].copy()
    u["scenario"] = "unseen"
    u["e2e_s"] = u["audio_s"] * u["variant"].map({"teacher": 0.2, "distill-L4": 0.1})
    full = pd.concat([df.assign(scenario="batched"), u], ignore_index=True)
    full["load_s"] = full["variant"].map({"teacher": 4.0, "distill-L4": 40.0})
    full["compile_s"] = 0.0
    full["compile_cache"] = full["variant"].map({"distill-L4": "warm"}).fillna("")
    return full


def _t1b(tables):  # noqa: ANN001, ANN202
    return next(t for t in tables if t.id == "table1b")


def test_table1b_warm_and_unseen_side_by_side(warm: pd.DataFrame) -> None:
    full = _with_unseen(warm)
    t = _t1b(all_tables(full))
    row = 0  # distill-L4
    assert t.column("CPU speed-up, unseen lengths", "ours")[row].value == pytest.approx(2.0)
    cost = t.column("One-time cost", "ours")[row]
    assert cost.value == pytest.approx(40.0) and cost.sub == "cache warm"
    be = t.column("Break-even audio", "ours")[row]
    assert be.value == pytest.approx(0.1) and be.text == "0.1 h" and be.sub == "unseen times"
    # the warm column is the warm rows' alone: the unseen rows change nothing there
    assert t.column("CPU speed-up (warm)", "ours")[row].value == \
        pytest.approx(table1_ratios(warm).column("CPU speed-up (warm)", "ours")[row].value)
    # a variant with no one-time figures: n/a, never a made-up number
    assert all(c.text == "n/a" for c in t.column("Break-even audio", "ours")[1:])


def test_break_even_never_when_not_faster_unseen(warm: pd.DataFrame) -> None:
    full = _with_unseen(warm)
    slow = (full["variant"] == "distill-L4") & (full["scenario"] == "unseen")
    full.loc[slow, "e2e_s"] = full.loc[slow, "audio_s"] * 0.3
    t = _t1b(all_tables(full))
    assert t.column("Break-even audio", "ours")[0].text == "never"
    assert t.column("CPU speed-up, unseen lengths", "ours")[0].value == pytest.approx(2 / 3)


def test_every_speed_up_says_warm_or_unseen(warm: pd.DataFrame) -> None:
    t = _t1b(all_tables(_with_unseen(warm)))
    groups = {g for g, _ in t.columns if "speed-up" in g.lower()}
    assert groups and all("warm" in g or "unseen" in g for g in groups)
    u = _t1b(all_tables(_with_unseen(warm), scenario="unseen"))
    assert {g for g, _ in u.columns if "CPU speed-up (" in g} == {"CPU speed-up (unseen)"}


def test_report_and_pareto_show_unseen(warm: pd.DataFrame) -> None:
    full = _with_unseen(warm)
    run = dataclasses.replace(load_run(FIXTURE), results=full)
    page = build_report(run)
    assert "Unseen timing (unseen)" in page and "batch job" in page
    assert "what a server meeting new utterances sees" in page and "CPU speed-up (warm)" in page
    assert "Break-even audio" in page
    fig = pareto(full[full["scenario"] == "batched"], raw=full)
    assert "hollow markers" in fig.caption
    assert "no unseen-lengths timing" in pareto(warm).caption


def test_report_and_bench_ratios_print_the_same_speed_ups(warm: pd.DataFrame) -> None:
    """One statistic for both faces (core.speedup): the median over repeats of each repeat's pair.  The unseen rows
    drift here as a VM does (everything 3x slow in the second repeat, the variant also in the third), so the
    paired median (x2.0: pairs 2, 2, 0.67) differs from the ratio of the two medians (0.2 / 0.3: x0.67)."""
    from bench.ratios import VS_TEACHER, _both_metrics

    full = _with_unseen(warm)
    u = full["scenario"] == "unseen"
    slow = {("teacher", 1): 3.0, ("distill-L4", 1): 3.0, ("distill-L4", 2): 3.0}
    full.loc[u, "e2e_s"] *= [slow.get((v, r), 1.0) for v, r in zip(full.loc[u, "variant"], full.loc[u, "repeat"])]
    t = _t1b(all_tables(full))
    for scenario, column in (("batched", "CPU speed-up (warm)"), ("unseen", "CPU speed-up, unseen lengths")):
        rows = full[(full["scenario"] == scenario)]
        bench = next(r for r in _both_metrics(rows, VS_TEACHER, "distill-L4", "teacher", "cpu", scenario)
                     if r.metric == "end-to-end")
        assert t.column(column, "ours")[0].value == pytest.approx(bench.median_ratio), scenario
    assert t.column("CPU speed-up, unseen lengths", "ours")[0].value == pytest.approx(2.0)
