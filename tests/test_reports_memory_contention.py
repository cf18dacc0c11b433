"""Issue 14 in the report: Table 1's variant memory column, the fourth Pareto panel (WER vs variant memory),
the method section's contended-repeat count and model_s spread with and without flagged repeats."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reports import figures
from reports.html import method_html
from reports.load import load_run
from reports.tables import MEMORY_GROUP, table1

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "results_small"


@pytest.fixture(scope="module")
def run():  # noqa: ANN201
    r = load_run(FIXTURE)
    df = r.results.copy()
    # one memory figure per variant x device (as the runner copies it to each row), GPU larger than CPU here
    codes = {v: i for i, v in enumerate(sorted(df["variant"].unique()))}
    df["variant_peak_mb"] = [100.0 + 10 * codes[v] + (5 if "cuda" in str(d) else 0)
                             for v, d in zip(df["variant"], df["device"])]
    df["variant_peak_method"] = "child-vmhwm"
    df["contended"] = [i == 0 for i in range(len(df))]  # the first row only
    df["others_cpu_s"] = [5.0 if i == 0 else 0.01 for i in range(len(df))]
    df["cpu_freq_mhz"] = 2400.0
    df.loc[df.index[0], "model_s"] = df["model_s"].max() * 10  # the contended repeat is the slow one
    return dataclasses.replace(r, results=df), df


def test_table1_has_a_labelled_variant_memory_column(run) -> None:  # noqa: ANN001
    _, df = run
    t = table1(df)
    cells = t.column(MEMORY_GROUP, "ours")
    measured = [c for c in cells if c.value is not None]
    assert measured and all(100 <= c.value < 1000 for c in measured)
    assert any(c.sub.startswith("GPU ") for c in measured)  # the GPU figure under the CPU one
    assert any("weights + activations" in n and "heaviest batch" in n for n in t.notes)
    # a run from before the column: 'not measured', not an error
    old = table1(df.drop(columns=["variant_peak_mb"]))
    assert {c.text for c in old.column(MEMORY_GROUP, "ours")} == {"n/a"}


def test_pareto_has_a_fourth_panel_wer_vs_variant_memory(run, monkeypatch) -> None:  # noqa: ANN001
    _, df = run
    made = {}
    new = figures._new

    def spy(*a, **k):  # noqa: ANN002, ANN003, ANN202
        fig, axes = new(*a, **k)
        made["axes"] = axes
        return fig, axes

    monkeypatch.setattr(figures, "_new", spy)
    r = figures.pareto(df)
    axes = made["axes"]
    assert len(axes) == 4 and axes[3].get_title() == "WER vs memory"
    assert "variant peak memory" in axes[3].get_xlabel()
    xs = sorted(x for c in axes[3].collections for x, _ in c.get_offsets())
    assert xs and min(xs) >= 100 and "peak memory" in r.caption


def test_method_gives_contended_count_and_spread_with_and_without(run) -> None:  # noqa: ANN001
    r, df = run
    h = method_html(r, "e2e_s")
    assert f"1 of {len(df)} flagged" in h and "0.10 of one core" in h
    assert "without flagged" in h and "2400 MHz" in h
    # the flagged repeat (10x slower) is in "all" and out of "without flagged"; the other variants are untouched
    first = df.iloc[0]
    g = df[(df["variant"] == first["variant"]) & (df["device"] == first["device"])]["model_s"]
    keep = g.drop(index=df.index[0])

    def spread(s) -> str:  # noqa: ANN001
        rel = (s.max() - s.min()) / s.median() * 100
        return f"{s.median():.3g} s, {s.min():.3g}&ndash;{s.max():.3g} ({rel:.1f}%, n={len(s)})"

    assert f"{first['variant']} on {first['device']}: all {spread(g)}; without flagged {spread(keep)}<" in h
    assert len(keep) == len(g) - 1 and keep.max() < g.max() / 5  # the two spreads really differ
    other = df[(df["variant"] != first["variant"]) & (df["device"] == first["device"])]
    v, s = other["variant"].iloc[0], other[other["variant"] == other["variant"].iloc[0]]["model_s"]
    assert f"{v} on {first['device']}: all {spread(s)}; without flagged {spread(s)}<" in h
    old = method_html(dataclasses.replace(r, results=df.drop(columns=["contended"])), "e2e_s")
    assert "not recorded" in old
