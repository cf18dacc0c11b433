"""reports.figures: PNGs from the fixture's logs and results; absent inputs give no figure, not an error."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reports.figures import all_figures, figure1, figure2, figure2_logs, pareto, pareto_front
from reports.load import load_run

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "results_small"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run():
    return load_run(FIXTURE)


def test_figures_are_pngs(run, tmp_path: Path) -> None:
    figs = all_figures(run.results, run.train_logs)
    assert [f.id for f in figs] == ["figure1", "figure2", "pareto"]
    for f in figs:
        assert f.png.startswith(PNG) and len(f.png) > 10_000
        assert f.write(tmp_path).read_bytes() == f.png
    assert "pyplot" not in "".join(sys.modules)  # no global backend switch


def test_figure1_needs_both_inits(run) -> None:
    alternate_only = [t for t in run.train_logs if t.init == "alternate"]
    assert figure1(alternate_only) is None
    f = figure1(run.train_logs)
    assert f is not None and "distill-L4-last/train_log.csv" in f.caption and "/work" not in f.caption


def test_figure2_needs_two_amounts(run) -> None:
    assert figure2(run.train_logs[:1]) is None
    assert figure2(run.train_logs) is not None


def test_pareto_needs_wer(run) -> None:
    assert pareto(run.results[run.results["weights"] == "random"]) is None


def test_pareto_front() -> None:
    x = [1.0, 2.0, 3.0, 1.5, 4.0]
    y = [10.0, 5.0, 6.0, 12.0, 1.0]
    assert pareto_front(x, y) == [0, 1, 4]


def test_figures_compare_like_with_like(tmp_path: Path) -> None:
    """With a depth sweep present, Figure 1 pairs the two L4 inits and Figure 2 the two L4 data amounts."""
    import pandas as pd

    from reports.load import TrainLog

    def tl(name: str, layers: int, init: str, hours: float) -> TrainLog:
        frame = pd.DataFrame({"epoch": [1, 2], "dev_wer": [0.5, 0.4], "audio_hours": [hours, 2 * hours]})
        return TrainLog(name, tmp_path / name / "train_log.csv", frame, init=init, train_hours=hours,
                        config={"layers": layers, "init": init}, recipe=f"distill-L{layers}")

    logs = [tl("distill-L2", 2, "alternate", 1.2), tl("distill-L4", 4, "alternate", 1.2),
            tl("distill-L4-last", 4, "last", 1.2), tl("distill-L4-frac", 4, "alternate", 0.3),
            tl("distill-L6", 6, "alternate", 1.2)]
    f1, f2 = figure1(logs), figure2(logs)
    assert "distill-L4/train_log.csv" in f1.caption and "distill-L4-last/train_log.csv" in f1.caption
    assert "distill-L2/" not in f1.caption
    assert f2 is not None
    assert {h: t.name for h, t in figure2_logs(logs).items()} == {1.2: "distill-L4", 0.3: "distill-L4-frac"}
    assert "Not like for like" not in f1.caption
    assert "Budgets: distill-L4 2 epochs of 1.20 h; distill-L4-last 2 epochs of 1.20 h." in f1.caption

    # a retrained L4 beside an L4-last on its old budget: still drawn, and the caption says how they differ
    longer = tl("distill-L4", 4, "alternate", 7.86)
    longer.frame = pd.DataFrame({"epoch": [1, 2, 3, 4], "step": [495, 990, 1485, 1980],
                                 "dev_wer": [0.3, 0.2, 0.17, 0.16], "audio_hours": [7.86, 15.7, 23.6, 31.4]})
    f1 = figure1([longer, tl("distill-L4-last", 4, "last", 1.2)])
    assert "Not like for like: distill-L4 4 epochs of 7.86 h (1980 steps); distill-L4-last 2 epochs of 1.20 h" \
        in f1.caption
    # Figure 2 states both budgets, and says when the epochs differ
    assert "Budgets: distill-L4 2 epochs of 1.20 h; distill-L4-frac 2 epochs of 0.30 h." in f2.caption
    f2 = figure2([longer, tl("distill-L4-frac", 4, "alternate", 0.3)])
    assert "distill-L4 4 epochs of 7.86 h (1980 steps); distill-L4-frac 2 epochs of 0.30 h: they differ in epochs" \
        in f2.caption
    # the same data but not the same epochs: Figure 1 says so too
    f1 = figure1([longer, tl("distill-L4-last", 4, "last", 7.86)])
    assert "distill-L4-last 2 epochs of 7.86 h: they differ in epochs too" in f1.caption
    assert f1.caption.endswith("so the curves compare budgets as well as initialisation.")
