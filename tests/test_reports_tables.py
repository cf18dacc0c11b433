"""reports.tables and reports.render: the paper's figures beside ours, in HTML, Markdown and LaTeX."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reports import paper
from reports.load import load_results
from reports.render import Cell, Table, latex_escape
from reports.stats import fmt, select_scenario, stat
from reports.tables import (all_tables, conv_pair, depth_sweep, table1, table1_ratios, table2, table2_arch, table3,
                            table_energy, write_tables)

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "results_small"


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return load_results(FIXTURE)


def _median(df: pd.DataFrame, variant: str, device: str, col: str) -> float:
    return float(df[(df["variant"] == variant) & (df["device"] == device)][col].median())


def _paired(df: pd.DataFrame, variant: str, base: str, device: str, col: str) -> float:
    """By hand: for every repeat both ran, base's time per second of audio over the variant's; their median (the
    runner interleaves variants per repeat, so a repeat's pair ran on the same machine state)."""
    def per(v: str) -> pd.Series:
        r = df[(df["variant"] == v) & (df["device"] == device)]
        return (r[col] / r["audio_s"]).groupby(r["repeat"]).median()

    a, b = per(variant), per(base)
    return float((b / a).dropna().median())


def _cells(t: Table, group: str, name: str) -> list[str]:
    return [c.text for c in t.column(group, name)]


def test_table1_paper_beside_ours(df: pd.DataFrame) -> None:
    t = table1(df)
    assert _cells(t, "CPU time", "paper")[:3] == ["4433 s", "1560 s", "4079 s"]
    assert _cells(t, "GPU time", "paper")[:3] == ["123 s", "51.0 s", "n/a"]
    assert _cells(t, "Params", "paper")[:3] == ["317 M", "65 M", "317 M"]
    assert _cells(t, "Size", "paper")[:3] == ["1262 MB", "262 MB", "354 MB"]
    assert _cells(t, "WER", "paper")[:3] == ["2.63 %", "9.51 %", "2.75 %"]
    assert _cells(t, "CO\u2082 (GPU)", "paper")[:3] == ["3.2 g", "1.3 g", "n/a"]
    assert _cells(t, "Energy (GPU)", "paper")[:3] == ["8.7 Wh", "3.6 Wh", "n/a"]
    # Ours: medians of the fixture's repeats, beside them.
    ours_cpu = t.column("CPU time", "ours")
    assert ours_cpu[0].value == pytest.approx(_median(df, "teacher", "cpu", "e2e_s"))
    assert ours_cpu[1].value == pytest.approx(_median(df, "distill-L4", "cpu", "e2e_s"))
    assert ours_cpu[0].sub.endswith("n=3")
    assert t.column("WER", "ours")[1].text == "11.80 %"
    assert t.column("Params", "ours")[0].text == "9.61 M"
    assert t.column("Energy (GPU)", "ours")[0].value == pytest.approx(
        _median(df, "teacher", "cuda", "energy_kwh") * 1000)
    # int8 never ran on the GPU: n/a, not measured (as the paper's N/A).
    assert t.column("GPU time", "ours")[2].text == "n/a" and t.column("GPU time", "ours")[2].sub == "not measured"
    # Our extra compressions follow, with no paper figures.
    labels = [r[0].sub for r in t.rows]
    assert any("distill-L4+int8" in s for s in labels) and any("prune-sensitivity" in s for s in labels)
    prune = next(i for i, r in enumerate(t.rows) if "prune-sensitivity" in r[0].sub)
    assert t.column("Size", "ours")[prune].sub == "on disk 29.8 MB"


def test_table1_without_gpu_rows(df: pd.DataFrame) -> None:
    cpu_only = df[df["device"] == "cpu"]
    t = table1(cpu_only)
    assert ("Energy (CPU)", "ours") in t.columns  # falls back to CPU energy, says so
    gpu = t.column("GPU time", "ours")
    assert all(c.text == "n/a" and c.sub == "no GPU in this run" for c in gpu)
    assert t.column("GPU time", "paper")[0].text == "123 s"  # the paper's still shown
    assert "n/a" in t.to_markdown()


def test_table1b_ratios(df: pd.DataFrame) -> None:
    t = table1_ratios(df)
    assert _cells(t, "Smaller by", "paper")[:2] == ["4.82x", "3.56x"]
    assert _cells(t, "CPU speed-up (warm)", "paper")[:2] == ["2.84x", "1.09x"]
    assert _cells(t, "WER change", "paper")[:2] == ["+6.88 pt", "+0.12 pt"]
    want = _paired(df, "distill-L4", "teacher", "cpu", "e2e_s")
    assert t.column("CPU speed-up (warm)", "ours")[0].value == pytest.approx(want)
    # the figure `footprint bench ratios` prints: paired per repeat, not the ratio of the two medians
    assert want != pytest.approx(_median(df, "teacher", "cpu", "e2e_s") / _median(df, "distill-L4", "cpu", "e2e_s"))


def test_table2_depth_sweep_matched_by_fraction(df: pd.DataFrame) -> None:
    assert depth_sweep(df) == [(12, "teacher"), (6, "distill-L6"), (4, "distill-L4"), (3, "distill-L3"),
                               (2, "distill-L2")]
    t = table2(df)
    kept = _cells(t, "", "Layers kept")
    assert kept == ["all", "1/2", "5/12", "1/3", "1/4", "1/6"]
    assert _cells(t, "Paper (GPU)", "Layers")[:5] == ["24", "12", "10", "8", "6"]
    assert _cells(t, "Paper (GPU)", "WER")[:5] == ["2.63 %", "6.60 %", "7.59 %", "10.42 %", "16.54 %"]
    assert _cells(t, "Paper (GPU)", "Time")[:5] == ["123 s", "81.0 s", "75.0 s", "69.0 s", "60.0 s"]
    assert _cells(t, "Ours (GPU)", "Layers") == ["12", "6", "\u2014", "4", "3", "2"]
    assert _cells(t, "Ours (GPU)", "WER")[1] == "7.90 %"
    assert not any("Distillation budgets" in n for n in t.notes)  # no train logs given


def test_table2_states_the_students_budgets(df: pd.DataFrame) -> None:
    from reports.load import TrainLog

    def tl(name: str, epochs: float, hours: float) -> TrainLog:
        frame = pd.DataFrame({"epoch": [epochs], "step": [100], "dev_wer": [0.2], "audio_hours": [epochs * hours]})
        return TrainLog(name, Path(name) / "train_log.csv", frame, train_hours=hours)

    same = [tl(f"distill-L{n}", 3, 1.2) for n in (2, 3, 4, 6)]
    notes = table2(df, train_logs=same).notes
    assert "Distillation budgets: distill-L6 3 epochs of 1.20 h (100 steps);" in notes[-1]
    assert "They differ" not in notes[-1]
    mixed = same[:2] + [tl("distill-L4", 4, 7.86), same[3]]
    assert "distill-L4 4 epochs of 7.86 h (100 steps)" in table2(df, train_logs=mixed).notes[-1]
    assert "They differ" in table2(df, train_logs=mixed).notes[-1]


def test_table2_arch(df: pd.DataFrame) -> None:
    t = table2_arch(df)
    assert _cells(t, "", "Layers") == ["24", "12", "10", "8", "6"]
    assert _cells(t, "Ours (large, random weights)", "Params")[0] == "315 M"
    assert _cells(t, "Ours (large, random weights)", "Size")[0] == "1262 MB"
    assert _cells(t, "Paper (GPU, trained)", "Size") == ["1262 MB", "665 MB", "564 MB", "464 MB", "363 MB"]
    assert t.column("Ours: CPU", "Speed-up (warm)")[0].value == pytest.approx(1.0)
    # every depth's speed-up over 24 layers, paired per repeat on each device (not 1.0 by construction)
    for group, dev in (("Ours: CPU", "cpu"), ("Ours: GPU", "cuda")):
        want = [_paired(df, f"arch-large-L{n}", "arch-large-L24", dev, "e2e_s") for n in (24, 12, 10, 8, 6)]
        assert [c.value for c in t.column(group, "Speed-up (warm)")] == pytest.approx(want, rel=1e-9)
        assert all(w > 1.2 for w in want[1:])  # the fixture's shallower models are faster


def test_table3_conv_layers(df: pd.DataFrame) -> None:
    assert conv_pair(df) == ("distill-L4", "maxpool-conv4")
    t = table3(df)
    assert _cells(t, "GPU time", "paper") == ["2.97 s", "2.26 s", "0.76x"]
    assert _cells(t, "CPU time", "paper") == ["161 s", "387 s", "2.40x"]
    assert t.column("WER", "ours")[1].text == "13.10 %"
    ratio = t.column("CPU time", "ours")[2].value
    assert ratio == pytest.approx(1 / _paired(df, "maxpool-conv4", "distill-L4", "cpu", "e2e_s"))
    assert ratio > 1  # the fixture, like the paper, has max-pooling slower on the CPU


def test_table3_without_maxpool(df: pd.DataFrame) -> None:
    t = table3(df[df["recipe"] != "maxpool-conv4"])
    assert t.column("CPU time", "ours")[1].text == "n/a"


def test_energy_table_labels_measured_and_estimated(df: pd.DataFrame) -> None:
    t = table_energy(df)
    rows = {(r[0].text, r[1].text, r[2].text): r for r in t.rows}
    paper_orig = rows[("paper", "Original (24 layers)", "GPU (V100)")]
    assert paper_orig[3].text == f"{0.0087 / 5.4 * 1000:.3g} Wh"
    assert rows[("ours", "teacher", "GPU (cuda)")][6].text == "measured"
    assert rows[("ours", "teacher", "CPU (cpu)")][6].text == "estimated"
    assert rows[("ours", "teacher", "CPU (cpu)")][7].text == "codecarbon-offline"
    # Report order: the original first.
    assert [r[1].text for r in t.rows if r[0].text == "ours"][:2] == ["teacher", "teacher"]


def test_renderers(df: pd.DataFrame, tmp_path: Path) -> None:
    tables = all_tables(df)
    assert [t.id for t in tables] == ["table1", "table1b", "table2", "table2-arch", "table3", "table4"]
    t1 = tables[0]
    h = t1.to_html()
    assert h.startswith('<table id="table1"') and "<caption><b>Table 1.</b>" in h
    assert '<td class="paper">4433 s</td>' in h and 'class="spread"' in h
    md = t1.to_markdown()
    assert "| CPU time: paper | CPU time: ours |" in md and "| 4433 s |" in md
    tex = t1.to_latex()
    assert r"\begin{tabular}" in tex and r"\multicolumn{2}{c}{CPU time}" in tex and r"2.63 \%" in tex
    assert r"\label{tab:table1}" in tex
    frame = t1.to_frame()
    assert frame[("CPU time", "paper")].iloc[0] == "4433 s"
    assert t1.values()[("CPU time", "paper")].iloc[0] == 4433
    written = write_tables(tables, tmp_path / "md", tmp_path / "tex")
    assert len(written) == 12 and (tmp_path / "tex" / "table3.tex").read_text().count(r"\\") >= 4


def test_latex_escape() -> None:
    assert latex_escape("a_b 5% & 2\u20133 CO\u2082") == r"a\_b 5\% \& 2--3 CO\textsubscript{2}"


def test_table_rejects_ragged_rows() -> None:
    t = Table("x", "X", "c", [("", "a"), ("", "b")])
    with pytest.raises(ValueError):
        t.add([Cell("1")])


def test_stat_and_format() -> None:
    s = stat([3.0, 1.0, 2.0, float("nan")])
    assert (s.median, s.lo, s.hi, s.n) == (2.0, 1.0, 3.0, 3)
    assert not stat([]).ok
    assert fmt(317e6, "params") == "317 M" and fmt(1261.85, "size") == "1262 MB" and fmt(51, "time") == "51.0 s"
    assert fmt(float("nan"), "time") == "n/a"


def test_scenario_selection(df: pd.DataFrame) -> None:
    both = pd.concat([df.assign(scenario="batched"), df.assign(scenario="paper-loop", e2e_s=df["e2e_s"] * 3)])
    assert len(select_scenario(both)) == len(df)
    t_batched, t_loop = table1(both), table1(select_scenario(both, "paper-loop"))
    batched_cpu = t_batched.column("CPU time", "ours")[0].value
    assert t_loop.column("CPU time", "ours")[0].value == pytest.approx(3 * batched_cpu)


def test_paper_data_matches_the_paper() -> None:
    assert [m.cpu_s for m in paper.TABLE1] == [4433, 1560, 4079]
    assert [d.layers for d in paper.TABLE2] == [24, 12, 10, 8, 6]
    assert paper.EXTRAPOLATION.computed_t == pytest.approx(19.0)
    assert paper.EXTRAPOLATION.stated_t == 21.0


def runner_shaped(df: pd.DataFrame) -> pd.DataFrame:
    """The fixture as bench's runner names things: the teacher is 'embedded', a paper-loop copy of each trained
    variant ('<name>@paper-loop', scenario 'paper-loop', 3x slower), arch rows in scenario 'arch', plus fp16 and
    an int8 arch row that must stay out of the arch table."""
    df = df.assign(variant=df["variant"].replace({"teacher": "embedded"}),
                   scenario=df["weights"].map({"trained": "batched", "random": "arch"}))
    t = df[df["weights"] == "trained"]
    loop = t.assign(variant=t["variant"] + "@paper-loop", scenario="paper-loop", e2e_s=t["e2e_s"] * 3)
    fp16 = t[t["recipe"] == "baseline"].assign(variant="fp16", recipe="fp16", size_mb=19.2)
    arch_int8 = df[df["recipe"] == "arch-large-L24"].assign(variant="arch-large-L24+int8-dynamic",
                                                           recipe="arch-large-L24+int8-dynamic", e2e_s=1.0)
    return pd.concat([df, loop, fp16, arch_int8], ignore_index=True)


def test_runner_shaped_results(df: pd.DataFrame) -> None:
    r = runner_shaped(df)
    t = table1(r)
    assert t.rows[0][0].sub == "ours: embedded (12 layers)"
    assert t.column("CPU time", "ours")[0].value == pytest.approx(_median(df, "teacher", "cpu", "e2e_s"))
    assert any(row[0].sub.startswith("ours: fp16") for row in t.rows)
    arch = table2_arch(r)
    want = _median(df, "arch-large-L24", "cpu", "e2e_s")
    assert arch.column("Ours: CPU", "Time (warm)")[0].value == pytest.approx(want)
    loop = table1(select_scenario(r, "paper-loop"))
    assert loop.rows[0][0].sub == "ours: embedded@paper-loop (12 layers)"


def test_table2_arch_by_hand() -> None:
    """Random-weight rows built here: 24 layers twice (params 300 / 310 M), 10 layers with its depth only in the
    recipe name, 3 layers (not a paper depth); 10 h of audio each."""
    def arch(n: int, params: float, e2e_s: float, layers: float | None = None, **kw: object) -> dict:
        return {"variant": f"arch{n}", "recipe": f"arch-large-L{n}", "weights": "random", "device": "cpu",
                "transformer_layers": n if layers is None else layers, "params": params, "size_mb": params / 250e3,
                "e2e_s": e2e_s, "audio_s": 36000.0, "n_utts": 10} | kw
    df = pd.DataFrame([arch(24, 300e6, 40.0), arch(24, 310e6, 40.0), arch(10, 120e6, 20.0, layers=float("nan")),
                       arch(3, 40e6, 8.0), arch(24, 305e6, 40.0, recipe="arch-large"),     # its depth in the column
                       arch(2, 1e6, 1.0, recipe=None)])                                      # no recipe: left out
    t = table2_arch(df)
    by = {r[0].text: r for r in t.rows}
    assert list(by) == ["24", "12", "10", "8", "6", "3"]
    p24, o24 = by["24"][1:5], by["24"][5:7]
    assert [c.text for c in p24] == ["317 M", "1262 MB", "123 s", "1.00x"] and p24[0].value == 317e6
    assert [(c.text, c.sub) for c in o24] == [("305 M", ""), ("1220 MB", "")]    # medians, no spread
    assert by["10"][5].text == "120 M" and by["10"][8].value == 2.0               # depth from the name; 40 / 20
    assert by["3"][1:5] == [Cell("\u2014", "", "paper")] * 4 and by["3"][8].value == 5.0
    assert by["3"][9] == Cell("n/a", "no GPU in this run", "ours")
    assert "Ours: 10 utterances shaped like dev-clean, 10.000 h of audio." in t.caption
    # a CPU row without a time: not measured (the GPU's "no GPU in this run" is for the GPU columns)
    t = table2_arch(df.assign(e2e_s=lambda d: d["e2e_s"].where(d["variant"] != "arch3")))
    assert t.rows[-1][7] == Cell("n/a", "not measured", "ours")
    empty = table2_arch(df.iloc[0:0])
    assert empty.caption.endswith("No architecture-only rows in this run.") and len(empty.rows) == 5


def test_table2_cells_by_hand() -> None:
    """A 12-layer teacher (1 s on the GPU, 8 s on the CPU) and a 2-layer student (0.5 s, 4 s): 1/6 of the layers,
    a depth the paper has no row for; the paper's 1/2 row (12 of 24 layers) has no student of ours."""
    def r(v: str, recipe: str, layers: int, device: str, e2e_s: float, **kw: float) -> dict:
        return {"variant": v, "recipe": recipe, "weights": "trained", "device": device, "transformer_layers": layers,
                "conv_layers": 7, "params": 1e6, "size_mb": 4.0, "e2e_s": e2e_s, "wer": 0.1, "audio_s": 36.0,
                "n_utts": 10, "dataset": "synthetic"} | kw
    df = pd.DataFrame([r("teacher", "baseline", 12, "cuda:0", 1.0), r("teacher", "baseline", 12, "cpu", 8.0),
                       r("distill-L2", "distill-L2", 2, "cuda:0", 0.5),
                       r("distill-L2", "distill-L2", 2, "cpu", 4.0, params=3e6, size_mb=8.0, wer=0.3)])
    t = table2(df)
    by = {row[0].text: row for row in t.rows}
    assert by["1/2"][1:4] == [Cell("12", "", "paper", 12), Cell("166 M", "", "paper", 166e6),
                              Cell("665 MB", "", "paper", 665)]
    assert by["1/6"][1:7] == [Cell("\u2014", "", "paper")] * 6
    # on the GPU: the teacher 1 s / 1 s, the student 1 s / 0.5 s
    assert [by[f][11].value for f in ("all", "1/6")] == [1.0, 2.0] and by["1/6"][10].value == 0.5
    # the student's two rows differ in parameters, size and WER: medians, no spread
    assert [(c.text, c.sub) for c in by["1/6"][8:10] + by["1/6"][12:]] == [("2 M", ""), ("6 MB", ""), ("20.00 %", "")]


def test_table1_cells_by_hand() -> None:
    """The teacher's three repeats differ in parameters and WER (those cells show no spread); an extra
    compression without a layer count has the paper's cells as dashes."""
    def r(v: str, recipe: str, params: float, wer: float, layers: float = 12) -> dict:
        return {"variant": v, "recipe": recipe, "weights": "trained", "device": "cpu", "transformer_layers": layers,
                "params": params, "size_mb": 4.0, "size_on_disk_mb": 4.0, "e2e_s": 8.0, "wer": wer, "audio_s": 36.0,
                "n_utts": 10, "dataset": "synthetic", "energy_kwh": 0.001, "co2_kg": 0.001}
    df = pd.DataFrame([r("teacher", "baseline", 1e6, 0.10), r("teacher", "baseline", 2e6, 0.20),
                       r("teacher", "baseline", 3e6, 0.30), r("p", "prune-0.3", 1e6, 0.1, layers=float("nan"))])
    t = table1(df)
    first, extra = t.rows[0], t.rows[-1]
    assert first[1] == Cell("317 M", "", "paper", 317e6)
    assert first[2] == Cell("2 M", "", "ours", 2e6)
    assert (first[10].text, first[10].sub) == ("20.00 %", "")
    assert extra[0] == Cell("(not in the paper)", "ours: p")
    assert [extra[i] for i in (1, 3, 5, 7, 9, 11, 13)] == [Cell("\u2014", "", "paper")] * 7


def test_table1_notes(df: pd.DataFrame) -> None:
    """What the energy total covers (the rows of the energy's device only), and the distilled-row note only when
    there is no distill-L4."""
    notes = " ".join(table1(df).notes)
    assert "No distill-L4" not in notes
    gpu = df[df["device"] != "cpu"].assign(energy_components_measured='{"gpu0": true}')
    cpu = df[df["device"] == "cpu"].assign(energy_components_measured='{"cpu": false}')
    assert "Ours (GPU): the total of gpu0 (measured);" in " ".join(table1(pd.concat([cpu, gpu])).notes)
    assert "Ours (CPU): see the method section;" in " ".join(table1(cpu.drop(columns=[
        "energy_components_measured"])).notes)
