"""reports.tables against hand-computed cells: the paper's ratios worked out from its published figures, ours from
a small frame whose medians and ratios are chosen to be exact."""
from __future__ import annotations

import json
from fractions import Fraction
from types import SimpleNamespace

import pandas as pd
import pytest

from reports import deploy
from reports.render import Cell
from reports.stats import TIME_LABELS, Stat
from reports.tables import (_frac_label, _memory_cell, _size_cell, all_tables, budgets_note, conv_pair, depth_sweep,
                            distilled_recipe, energy_includes, energy_kind, ours, ratio_cell, ref, table1,
                            table1_ratios, table2, table2_arch, table3, table_energy, write_tables)

nan = float("nan")


def row(variant: str, recipe: str, device: str = "cpu", layers: int = 12, **kw: object) -> dict:
    r = {"variant": variant, "recipe": recipe, "weights": "trained", "device": device, "transformer_layers": layers,
         "conv_layers": 7, "params": 1_000_000, "size_mb": 400.0, "size_on_disk_mb": 400.0, "e2e_s": 8.0,
         "model_s": 6.0, "wall_s": 8.0, "wer": 0.10, "co2_kg": 0.002, "energy_kwh": 0.004, "energy_j": 800.0,
         "kwh_per_audio_hour": 0.4, "co2_kg_per_audio_hour": 0.2, "audio_s": 36.0, "n_utts": 10,
         "dataset": "synthetic", "carbon_intensity_g_per_kwh": 500.0, "energy_measured": True,
         "energy_method": "rapl", "energy_components_measured": json.dumps({"package-0": True}),
         "variant_peak_mb": 300.0}
    r.update(kw)
    return r


def frame() -> pd.DataFrame:
    """teacher (12 layers) 8 s, distill-L4 (4 layers) 2 s, distill-L6 4 s, int8 4 s on the CPU; teacher on a GPU."""
    return pd.DataFrame([
        row("teacher", "baseline", e2e_s=e, repeat=i) for i, e in enumerate((7.0, 8.0, 9.0))] + [
        row("teacher", "baseline", device="cuda:0", e2e_s=1.0, energy_kwh=0.001, energy_j=80.0, variant_peak_mb=200.0,
            kwh_per_audio_hour=0.1),
        row("distill-L4", "distill-L4", layers=4, params=250_000, size_mb=100.0, size_on_disk_mb=100.0, e2e_s=2.0,
            wer=0.12, kwh_per_audio_hour=0.1, energy_j=200.0),
        row("distill-L6", "distill-L6", layers=6, params=400_000, size_mb=160.0, e2e_s=4.0, wer=0.11),
        row("int8", "int8-dynamic", size_mb=100.0, size_on_disk_mb=120.0, e2e_s=4.0, wer=0.105,
            kwh_per_audio_hour=0.2),
        row("mp", "maxpool-conv4", layers=4, conv_layers=4, e2e_s=3.0, wer=0.15),
        row("arch24", "arch-large-L24", layers=24, weights="random", params=300_000_000, size_mb=1200.0, e2e_s=40.0),
        row("arch12", "arch-large-L12", layers=12, weights="random", params=150_000_000, size_mb=600.0, e2e_s=16.0),
        row("arch12q", "arch-large-L12+int8-dynamic", layers=12, weights="random", e2e_s=1.0),
    ])


def col(t, group: str, name: str) -> int:  # noqa: ANN001
    return t.columns.index((group, name))


def test_ours_cell() -> None:
    assert ours(Stat(2.0, 1.0, 3.0, 3), "time") == Cell("2.00 s", "1.00\u20133.00, n=3", "ours", 2.0)
    assert ours(Stat(2.0, 1.0, 3.0, 3), "wh", scale=1000.0) == Cell("2e+03 Wh", "1e+03\u20133e+03, n=3", "ours",
                                                                      2000.0)
    assert ours(Stat(2.0, 2.0, 2.0, 2), "time") == Cell("2.00 s", "n=2", "ours", 2.0)
    assert ours(Stat(2.0, 1.0, 3.0, 1), "time") == Cell("2.00 s", "", "ours", 2.0)
    assert ours(Stat(2.0, 1.0, 3.0, 3), "time", spread=False) == Cell("2.00 s", "", "ours", 2.0)
    assert ours(Stat(2.0, 2.0, 2.0, 2), "time", spread=False).sub == ""
    assert ours(Stat(nan, nan, nan, 0), "time") == Cell("n/a", "not measured", "ours")
    assert ours(Stat(nan, nan, nan, 0), "time", missing="gone") == Cell("n/a", "gone", "ours")


def test_ref_and_ratio_cells() -> None:
    assert ref(None, "time") == Cell("n/a", "", "paper") and ref(None, "time", missing="x") == Cell("x", "", "paper")
    assert ref(0.0032, "g", scale=1000.0) == Cell("3.2 g", "", "paper", 3.2)
    assert ref(123, "time") == Cell("123 s", "", "paper", 123)
    assert ratio_cell(6.0, 3.0, "ours") == Cell("2.00x", "", "ours", 2.0)
    assert ratio_cell(1.0, 4.0, "paper", "pct") == Cell("0.25 %", "", "paper", 0.25)
    for num, den in ((None, 1.0), (1.0, None), (nan, 1.0), (1.0, nan), (1.0, 0.0)):
        assert ratio_cell(num, den, "ours") == Cell("n/a", "", "ours")


def test_size_cell() -> None:
    base = pd.DataFrame([{"size_mb": 100.0, "size_on_disk_mb": 50.0}])
    assert _size_cell(base) == Cell("100 MB", "on disk 50 MB", "ours", 100.0)
    assert _size_cell(base.assign(size_on_disk_mb=102.0)) == Cell("100 MB", "", "ours", 100.0)    # within 2 %
    assert _size_cell(base.assign(size_on_disk_mb=103.0)).sub == "on disk 103 MB"
    assert _size_cell(base.assign(size_on_disk_mb=nan)).sub == ""
    assert _size_cell(base.assign(size_mb=nan)).text == "n/a"


def test_memory_cell() -> None:
    both = pd.DataFrame([{"device": "cpu", "variant_peak_mb": 300.0}, {"device": "cuda:0", "variant_peak_mb": 200.0}])
    assert _memory_cell(both) == Cell("300 MB", "GPU 200 MB", "ours", 300.0)
    assert _memory_cell(both.iloc[1:]) == Cell("200 MB", "GPU", "ours", 200.0)
    assert _memory_cell(both.iloc[:1]) == Cell("300 MB", "", "ours", 300.0)
    assert _memory_cell(both.assign(variant_peak_mb=nan)) == Cell("n/a", "not measured", "ours")
    assert _memory_cell(both.drop(columns=["variant_peak_mb"])) == Cell("n/a", "not measured", "ours")


def test_recipe_choices() -> None:
    df = frame()
    assert distilled_recipe(df) == "distill-L4"
    assert distilled_recipe(df[df["recipe"] != "distill-L4"]) == "distill-L6"
    assert distilled_recipe(df, preferred="nope") == "distill-L4"                  # shallowest plain student
    assert distilled_recipe(df[~df["recipe"].str.startswith("distill")]) is None
    assert energy_kind(df) == "GPU"
    assert energy_kind(df.assign(energy_kwh=df["energy_kwh"].where(df["device"] == "cpu"))) == "CPU"
    assert energy_kind(df[df["device"] == "cpu"]) == "CPU"
    assert depth_sweep(df) == [(12, "teacher"), (6, "distill-L6"), (4, "distill-L4")]
    assert conv_pair(df) == ("distill-L4", "mp")
    assert conv_pair(df[df["variant"] != "distill-L4"]) == ("teacher", "mp")
    assert conv_pair(df[df["variant"] != "mp"]) == ("teacher", None)
    assert _frac_label(Fraction(1)) == "all" and _frac_label(Fraction(5, 12)) == "5/12"


def test_energy_includes() -> None:
    g = pd.DataFrame({"energy_components_measured": [json.dumps({"gpu0": True, "cpu": False, "ram": True}),
                                                     json.dumps({"gpu0": True, "cpu": False, "ram": False}),
                                                     "{broken", None, {"disk": True}]})
    assert energy_includes(g) == ("gpu0 (measured) + cpu (estimated) + ram (mixed) + disk (measured)")
    assert energy_includes(pd.DataFrame({"x": [1]})) == ""
    assert energy_includes(pd.DataFrame({"energy_components_measured": ["[1, 2]"]})) == ""


def test_budgets_note() -> None:
    logs = [SimpleNamespace(name="s4", budget="2 epochs", trained_for=(2, "epochs", 9)),
            SimpleNamespace(name="s6", budget="2 epochs", trained_for=(2, "epochs", 7)),
            SimpleNamespace(name="s2", budget="500 steps", trained_for=(500, "steps"))]
    assert budgets_note(["s4", "s6"], logs) == "Distillation budgets: s4 2 epochs; s6 2 epochs."
    assert budgets_note(["s4", "s2", "zz"], logs) == ("Distillation budgets: s4 2 epochs; s2 500 steps. They differ, "
                                                      "so these rows compare training budgets as well as depths.")
    assert budgets_note(["zz"], logs) is None and budgets_note(["s4"], None) is None
    none = [SimpleNamespace(name="a", budget="?", trained_for=None), SimpleNamespace(name="b", budget="?",
                                                                                     trained_for=None)]
    assert budgets_note(["a", "b"], none) == "Distillation budgets: a ?; b ?."


def test_table1b_by_hand() -> None:
    t = table1_ratios(frame())
    names = [r[0].text for r in t.rows]
    assert names[:2] == ["Distilled (4 layers)", "Quantized (int8 dynamic)"]
    d, q = t.rows[0], t.rows[1]
    # paper: 1262/262 MB, 4433/1560 s CPU, 123/51 s GPU, 9.51 - 2.63 WER points, 0.0087/0.0036 kWh
    groups = ("Smaller by", "CPU speed-up (warm)", "GPU speed-up (warm)", "WER change")
    assert [d[col(t, g, "paper")].text for g in groups] == [
        "4.82x", "2.84x", "2.41x", "+6.88 pt"]
    assert d[col(t, "Energy saved (GPU)", "paper")].text == "2.42x"
    # ours: 400/100 MB, 8/2 s on the CPU, WER 12 % - 10 % = +2 pt, energy per hour on the GPU: none for the student
    assert d[col(t, "Smaller by", "ours")].value == 4.0 and d[col(t, "CPU speed-up (warm)", "ours")].value == 4.0
    assert d[col(t, "WER change", "ours")].text == "+2.00 pt"
    assert d[col(t, "GPU speed-up (warm)", "ours")].text == "n/a"
    # int8: 1262/354 = 3.56, 4433/4079 = 1.09, no GPU time or energy in the paper, WER 2.75 - 2.63 = +0.12
    assert [q[col(t, g, "paper")].text for g in (*groups,
                                                 "Energy saved (GPU)")] == ["3.56x", "1.09x", "n/a", "+0.12 pt",
                                                                            "n/a"]
    assert q[col(t, "CPU speed-up (warm)", "ours")].value == 2.0 and q[col(t, "WER change", "ours")].text == "+0.50 pt"
    assert q[0].sub == "ours: int8 (12 layers)" and d[0].sub == "ours: distill-L4 (4 layers)"
    assert len(t.rows) == 2                     # plain students, max-pool and arch rows are not Table 1's
    cpu = table1_ratios(frame()[lambda d: d["device"] == "cpu"])
    # on the CPU: energy per hour 0.4 / 0.1 = 4x for the student, 0.4 / 0.2 = 2x for int8
    assert cpu.rows[0][col(cpu, "Energy saved (CPU)", "ours")].value == 4.0
    assert cpu.rows[1][col(cpu, "Energy saved (CPU)", "ours")].value == 2.0


def test_table1_by_hand() -> None:
    t = table1(frame())
    first = t.rows[0]
    assert first[0] == Cell("Original (24 layers)", "ours: teacher (12 layers)")
    assert first[col(t, "Params", "paper")].text == "317 M" and first[col(t, "Params", "ours")].text == "1 M"
    assert first[col(t, "Size", "paper")].text == "1262 MB"
    assert first[col(t, "CPU time", "paper")].text == "4433 s"
    assert first[col(t, "CPU time", "ours")] == Cell("8.00 s", "7.00\u20139.00, n=3", "ours", 8.0)
    assert first[col(t, "GPU time", "ours")].value == 1.0 and first[col(t, "GPU time", "paper")].text == "123 s"
    assert first[col(t, "WER", "paper")].text == "2.63 %" and first[col(t, "WER", "ours")].text == "10.00 %"
    # energy on the GPU: 0.0032 kg = 3.2 g and 0.0087 kWh = 8.7 Wh in the paper; ours 0.002 kg, 0.001 kWh
    g = first[col(t, "CO\u2082 (GPU)", "paper")]
    assert (g.text, g.value) == ("3.2 g", pytest.approx(3.2))
    assert first[col(t, "Energy (GPU)", "paper")].text == "8.7 Wh"
    assert first[col(t, "CO\u2082 (GPU)", "ours")].value == pytest.approx(2.0)
    assert first[col(t, "Energy (GPU)", "ours")].value == pytest.approx(1.0)
    assert first[col(t, "Variant peak memory", "ours")] == Cell("300 MB", "GPU 200 MB", "ours", 300.0)
    q = t.rows[2]
    assert q[col(t, "GPU time", "paper")].text == "n/a" and q[col(t, "CO\u2082 (GPU)", "paper")].text == "n/a"
    assert q[col(t, "GPU time", "ours")] == Cell("n/a", "not measured", "ours")
    assert q[col(t, "Size", "ours")] == Cell("100 MB", "on disk 120 MB", "ours", 100.0)
    extra = [r for r in t.rows if r[0].text == "(not in the paper)"]
    assert extra == [] and len(t.rows) == 3
    assert "Ours: 10 utterances, 0.01 h of audio per timed pass (synthetic)" in t.caption
    assert "Ours (GPU): the total of package-0 (measured);" in " ".join(t.notes)
    cpu_only = table1(frame()[lambda d: d["device"] == "cpu"])
    assert cpu_only.rows[0][col(cpu_only, "GPU time", "ours")] == Cell("n/a", "no GPU in this run", "ours")
    assert cpu_only.rows[0][col(cpu_only, "Energy (CPU)", "ours")].value == pytest.approx(4.0)


def test_table1_extras_and_missing() -> None:
    df = pd.concat([frame(), pd.DataFrame([row("p", "prune-0.3"), row("p8", "prune-0.3+int8-dynamic")])])
    t = table1(df.drop(index=df.index[df["recipe"] == "int8-dynamic"]))
    assert [r[0].sub for r in t.rows[3:]] == ["ours: p (12 layers)", "ours: p8 (12 layers)"]
    assert t.rows[2][0].sub == "ours: int8-dynamic: not in this run"
    assert t.rows[3][col(t, "Params", "paper")] == Cell("\u2014", "", "paper")
    t2 = table1(frame(), distilled="distill-L6")
    assert t2.rows[1][0].sub == "ours: distill-L6 (6 layers)"
    assert t2.notes[-1] == "No distill-L4 in this run: the distilled row uses distill-L6."


def test_table2_by_hand() -> None:
    t = table2(frame()[lambda d: d["device"] == "cpu"])
    # ours 12 -> all, 6 -> 1/2, 4 -> 1/3; the paper's 24, 12, 10, 8, 6 -> all, 1/2, 5/12, 1/3, 1/4
    assert [r[0].text for r in t.rows] == ["all", "1/2", "5/12", "1/3", "1/4"]
    half, third = t.rows[1], t.rows[3]
    assert half[col(t, "Paper (GPU)", "Layers")].value == 12
    assert half[col(t, "Paper (GPU)", "Speed-up")].text == "1.52x"          # 123 / 81
    assert third[col(t, "Paper (GPU)", "Speed-up")].text == "1.78x"         # 123 / 69
    assert half[col(t, "Ours (CPU)", "Layers")] == Cell("6", "", "ours", 6)        # named like its depth
    assert half[col(t, "Ours (CPU)", "Speed-up (warm)")].value == 2.0              # 8 / 4
    assert third[col(t, "Ours (CPU)", "Speed-up (warm)")].value == 4.0             # 8 / 2
    assert third[col(t, "Ours (CPU)", "Layers")] == Cell("4", "", "ours", 4)
    assert t.rows[0][col(t, "Ours (CPU)", "Layers")] == Cell("12", "", "ours", 12)
    odd = table2(frame()[lambda d: d["device"] == "cpu"].replace({"variant": {"distill-L6": "six"}}))
    assert odd.rows[1][col(t, "Ours (CPU)", "Layers")] == Cell("6", "six", "ours", 6)
    assert t.rows[2][col(t, "Ours (CPU)", "Layers")] == Cell("\u2014", "", "ours")
    assert "12-layer teacher" in t.caption
    assert table2(frame()).columns[-1] == ("Ours (GPU)", "WER")
    none = table2(frame()[lambda f: f["recipe"] == "int8-dynamic"])              # no teacher, no student
    assert none.notes == ["No trained depth sweep (baseline and distill-L<n> rows) in this run."]
    assert "ours: ?-layer teacher)" in none.caption


def test_table2_arch_by_hand() -> None:
    t = table2_arch(frame())
    by = {r[0].text: r for r in t.rows}
    assert set(by) == {"24", "12", "10", "8", "6"}
    assert by["12"][col(t, "Ours: CPU", "Speed-up (warm)")].value == pytest.approx(40.0 / 16.0)  # fp32 rows only
    assert by["24"][col(t, "Ours: CPU", "Speed-up (warm)")].value == 1.0
    assert by["12"][col(t, "Paper (GPU, trained)", "Speed-up")].text == "1.52x"
    assert by["10"][col(t, "Ours: CPU", "Time (warm)")] == Cell("\u2014", "", "ours")
    assert by["24"][col(t, "Ours: GPU", "Time (warm)")] == Cell("n/a", "not measured", "ours")
    cpu = table2_arch(frame()[lambda d: d["device"] == "cpu"])
    assert cpu.rows[0][col(t, "Ours: GPU", "Time (warm)")] == Cell("n/a", "no GPU in this run", "ours")
    assert "10 utterances shaped like dev-clean, 0.010 h of audio" in t.caption


def test_table3_by_hand() -> None:
    t = table3(frame())
    assert [r[0].text for r in t.rows] == ["7", "4", "4 / 7 (ratio; ours warm)"]
    last = t.rows[2]
    assert last[col(t, "GPU time", "paper")].text == "0.76x"        # 2.26 / 2.97
    assert last[col(t, "CPU time", "paper")].text == "2.40x"        # 387 / 161
    assert last[col(t, "CPU time", "ours")].value == 1.5            # 3 s / 2 s
    assert t.rows[0][-1].text == "distill-L4 (4 layers)" and t.rows[1][-1].text == "mp (4 layers)"


def test_table_energy_by_hand() -> None:
    t = table_energy(frame())
    paper_rows = [r for r in t.rows if r[0].text == "paper"]
    assert len(paper_rows) == 2
    orig = paper_rows[0]
    # 0.0087 kWh / 5.4 h = 1.61 Wh per hour; 0.0032 kg / 5.4 h = 0.593 g; 0.0087 kWh x 3.6e6 / 123 s = 255 W
    assert [c.text for c in orig[3:6]] == ["1.61 Wh", "0.593 g", "255 W"]
    ours_rows = [r for r in t.rows if r[0].text == "ours"]
    assert [(r[1].text, r[2].text) for r in ours_rows][:2] == [("teacher", "CPU (cpu)"), ("teacher", "GPU (cuda:0)")]
    cpu = ours_rows[0]
    assert cpu[3].value == pytest.approx(400.0) and cpu[4].value == pytest.approx(200.0)
    assert cpu[5].value == pytest.approx(100.0)                    # 800 J / 8 s
    assert cpu[6].text == "measured" and cpu[7].text == "rapl; total of package-0 (measured)"
    mixed = table_energy(frame().assign(energy_measured=[True] * 3 + [False] + [None] * 7, energy_method=None,
                                        energy_components_measured=None))
    rows = [r for r in mixed.rows if r[0].text == "ours"]
    assert [r[6].text for r in rows[:2]] == ["measured", "estimated"] and rows[2][6].text == "unknown"
    assert rows[0][7].text == "unknown"


def test_write_tables(tmp_path) -> None:  # noqa: ANN001
    ts = [table3(frame())]
    written = write_tables(ts, markdown_dir=tmp_path / "md", latex_dir=tmp_path / "tex")
    assert written == [tmp_path / "md" / "table3.md", tmp_path / "tex" / "table3.tex"]
    assert written[0].read_text(encoding="utf-8") == ts[0].to_markdown()
    assert written[1].read_text(encoding="utf-8") == ts[0].to_latex()
    assert write_tables(ts) == []


def test_dataset_line_by_hand() -> None:
    from reports.tables import _dataset_line
    df = pd.DataFrame([row("t", "baseline", audio_s=3618.01, n_utts=7, dataset="b"),
                       row("u", "x", audio_s=3618.01, n_utts=7, dataset="a"),
                       row("r", "arch-x", weights="random", audio_s=99999.0, n_utts=99, dataset="c")])
    # 3618.01 s / 3600 = 1.005003 h -> "1.01" (over 3601 it would print 1.00); random-weight rows left out
    assert _dataset_line(df).startswith("Ours: 7 utterances, 1.01 h of audio per timed pass (a, b); paper: "
                                        "LibriSpeech dev-clean, 2703 utterances, 5.4 h.")
    only_random = df[df["weights"] == "random"].assign(dataset=None)
    assert _dataset_line(only_random).startswith("Ours: 99 utterances, 27.78 h of audio per timed pass "
                                                 "(unknown dataset);")


def test_student_choices_by_depth_not_name() -> None:
    df = pd.DataFrame([row("t", "baseline", conv_layers=4), row("s12", "distill-L12", layers=12),
                       row("s6", "distill-L6", layers=6), row("s2", "distill-L2", layers=2, conv_layers=4),
                       row("s9", "distill-L9", layers=nan)])
    # shallowest plain student by its layer count (by name distill-L12 would sort first)
    assert distilled_recipe(df.drop(index=3), preferred="nope") == "distill-L6"
    assert distilled_recipe(df, preferred="nope") == "distill-L2"
    # the teacher stays whatever its conv stack; a 4-conv student and one without a depth are left out,
    # and the students after them still count
    assert depth_sweep(df) == [(12, "t"), (6, "s6")]
    assert depth_sweep(df[df["variant"] != "t"]) == [(12, "s12"), (6, "s6")]


def test_cells_with_two_repeats() -> None:
    assert ours(Stat(2.0, 1.0, 3.0, 2), "time") == Cell("2.00 s", "1.00\u20133.00, n=2", "ours", 2.0)
    # the size cell never shows a spread, even when the repeats' sizes differ
    two = pd.DataFrame([{"size_mb": 100.0, "size_on_disk_mb": 100.0}, {"size_mb": 102.0, "size_on_disk_mb": 101.0}])
    assert _size_cell(two) == Cell("101 MB", "", "ours", 101.0)


def test_table1_extra_rows_singles_before_combinations() -> None:
    df = pd.concat([frame(), pd.DataFrame([row("ab", "a+b"), row("b", "b")])], ignore_index=True)
    t = table1(df[~df["recipe"].str.startswith("distill")])
    assert [r[0].sub for r in t.rows] == ["ours: teacher (12 layers)", "ours: distill-L4: not in this run",
                                          "ours: int8 (12 layers)", "ours: b (12 layers)", "ours: ab (12 layers)"]


def test_table_energy_paper_rows_exact() -> None:
    orig, dist = [r for r in table_energy(frame()).rows if r[0].text == "paper"]
    # Table 1 over 5.4 h: 0.0087 kWh -> 1.6111 Wh/h, 0.0032 kg -> 0.59259 g/h; 0.0087 kWh = 31320 J over 123 s
    assert orig[3].value == pytest.approx(1.6111111111, rel=1e-9)
    assert orig[4].value == pytest.approx(0.5925925926, rel=1e-9)
    assert orig[5].value == pytest.approx(254.6341463415, rel=1e-9)
    # distilled: 0.0036 / 5.4 = 0.6667 Wh/h, 0.0013 / 5.4 = 0.2407 g/h, 12960 J / 51 s = 254.12 W
    assert dist[3].value == pytest.approx(0.6666666667, rel=1e-9)
    assert dist[4].value == pytest.approx(0.2407407407, rel=1e-9)
    assert dist[5].value == pytest.approx(254.1176470588, rel=1e-9)
    assert [c.text for c in orig[6:8]] == ["estimated", "CodeCarbon defaults"]


def test_write_tables_nested_and_again(tmp_path) -> None:  # noqa: ANN001
    ts = [table3(frame())]
    out = tmp_path / "a" / "b"
    assert write_tables(ts, markdown_dir=out) == [out / "table3.md"]
    assert write_tables(ts, markdown_dir=out) == [out / "table3.md"]           # an existing folder is fine
    assert (out / "table3.md").read_bytes() == ts[0].to_markdown().encode("utf-8")


def test_every_cell_says_whose_figure_it_is() -> None:
    """Under a "paper" column (or a "Paper ..." group) the cell is the paper's, under "ours" / "Ours ..." ours."""
    df = frame()
    gpu_student = pd.DataFrame([row("distill-L4", "distill-L4", device="cuda:0", layers=4, e2e_s=0.5)])
    both = pd.concat([df, gpu_student], ignore_index=True)
    for t in (table1(both), table1_ratios(both), table2(both), table2_arch(both), table3(both)):
        for r in t.rows:
            for (group, name), c in zip(t.columns, r):
                whose = ("paper" if name == "paper" or group.startswith("Paper") else
                         "ours" if name == "ours" or group.startswith("Ours") else None)
                if whose and not (t.id == "table3" and r[0].text == "4 / 7 (ratio; ours warm)" and c.text == ""):
                    assert c.source == whose, (t.id, group, name, c)
                if c.text in ("\u2014", "n/a") and c.value is None:
                    assert c.sub in ("", "not measured", "no GPU in this run"), (t.id, group, name, c)
    t = table1_ratios(both)
    # on the GPU the student takes 0.5 s against the teacher's 1 s
    assert t.rows[0][col(t, "GPU speed-up (warm)", "ours")].value == 2.0


# --- options passed through, the unseen scenario, rows the paper does not have ---------------------------------
def with_unseen() -> pd.DataFrame:
    """frame() as warm rows (teacher load 100 s, distill-L4 500 s) plus unseen rows over the same 36 s of audio:
    teacher 12 s, distill-L4 4 s: x3.00; break-even (500 - 100) s / ((12 - 4) / 36 x 3600 s/h) = 0.5 h."""
    warm = frame().assign(scenario="batched", load_s=lambda d: d["variant"].map({"teacher": 100.0,
                                                                                 "distill-L4": 500.0}))
    unseen = [row("teacher", "baseline", e2e_s=12.0, scenario="unseen"),
              row("distill-L4", "distill-L4", layers=4, e2e_s=4.0, wer=0.12, scenario="unseen")]
    return pd.concat([warm, pd.DataFrame(unseen)], ignore_index=True)


def test_all_tables_pass_their_options() -> None:
    logs = [SimpleNamespace(name=n, budget="2 epochs", trained_for=(2, "epochs")) for n in ("distill-L6", "distill-L4")]
    t1, t1b, t2, t2a, t3, t4 = all_tables(frame(), time_col="model_s", distilled="distill-L6", train_logs=logs)
    assert [t.id for t in (t1, t1b, t2, t2a, t3, t4)] == ["table1", "table1b", "table2", "table2-arch", "table3",
                                                          "table4"]
    # model_s is 6 s in every row (e2e: teacher 8 s, distill-L6 4 s, distill-L4 2 s, arch24 40 s)
    assert t1.rows[0][col(t1, "CPU time", "ours")].text == "6.00 s" and TIME_LABELS["model_s"] in t1.caption
    assert t1.rows[1][0].sub == t1b.rows[0][0].sub == "ours: distill-L6 (6 layers)"
    assert t1b.rows[0][col(t1b, "CPU speed-up (warm)", "ours")].value == 1.0
    assert t1b.columns[-3:] == deploy.COLUMNS                                   # the raw rows reached Table 1b
    assert t2.rows[0][col(t2, "Ours (GPU)", "Time (warm)")].text == "6.00 s"  # teacher on the GPU: e2e 1 s
    assert t2.notes[-1] == "Distillation budgets: distill-L6 2 epochs; distill-L4 2 epochs."
    assert t2a.rows[0][col(t2a, "Ours: CPU", "Time (warm)")].text == "6.00 s"
    assert t3.rows[0][col(t3, "CPU time", "ours")].text == "6.00 s" and TIME_LABELS["model_s"] in t3.caption
    # scenario: the tables see only the unseen rows; Table 1b's raw rows keep every scenario
    u1, u1b, u2, _, u3, u4 = all_tables(with_unseen(), scenario="unseen")
    assert u2.rows[0][col(u2, "Ours (CPU)", "Time (unseen)")].text == "12.0 s"
    assert deploy.times_note("unseen") in u2.caption
    assert u1.rows[0][col(u1, "CPU time", "ours")].text == "12.0 s"
    assert f"{deploy.times_note('unseen')[:-1]}; our energies" in u1.caption
    assert u1b.rows[0][col(u1b, "CPU speed-up (unseen)", "ours")].value == 3.0
    assert u1b.caption.endswith(f"Speed-ups unseen: {deploy.METHOD_ROWS[1][1]}.")
    assert u3.rows[-1][0].text == "4 / 7 (ratio; ours unseen)" and deploy.times_note("unseen") in u3.caption
    assert u4.caption.endswith("Ours: energies over unseen timed repeats.")


def test_table1b_deploy_cells_distilled_and_gpu_energy() -> None:
    df = with_unseen()
    t = table1_ratios(df, raw=df)
    d = t.rows[0]
    assert d[col(t, "CPU speed-up (warm)", "ours")].value == 4.0                 # warm rows: 8 s / 2 s
    speed, cost, be = d[-3:]
    assert (speed.text, speed.sub, speed.source, speed.value) == ("x3.00", "", "ours", pytest.approx(3.0))
    assert cost == Cell("500.0 s", "", "ours", 500.0)
    assert (be.text, be.sub, be.value) == ("0.5 h", "unseen times", pytest.approx(0.5))
    assert t.caption.endswith(f"Speed-ups warm: {deploy.METHOD_ROWS[0][1]}.")
    # the distilled row: as asked, else the shallowest plain student when there is no distill-L4
    assert table1_ratios(frame(), distilled="distill-L6").rows[0][0].sub == "ours: distill-L6 (6 layers)"
    no_l4 = frame()[lambda f: f["recipe"] != "distill-L4"]
    assert table1_ratios(no_l4).rows[0][0].sub == "ours: distill-L6 (6 layers)"
    # energy per hour on the GPU: teacher 0.1 kWh/h, the student's GPU row 0.05 -> 2x (its CPU row: 0.1 -> 1x)
    gpu = pd.DataFrame([row("distill-L4", "distill-L4", device="cuda:0", layers=4, e2e_s=0.5, kwh_per_audio_hour=0.05)])
    t = table1_ratios(pd.concat([frame(), gpu], ignore_index=True))
    assert t.rows[0][col(t, "Energy saved (GPU)", "ours")].value == pytest.approx(2.0)


def test_table1b_rows_without_paper_or_figures() -> None:
    extra = pd.DataFrame([row("p", "prune-0.3", layers=nan, wer=nan)])
    df = pd.concat([frame(), extra], ignore_index=True)
    t = table1_ratios(df[df["recipe"] != "int8-dynamic"])
    d, q, p = t.rows
    w = d[col(t, "WER change", "paper")]                                        # 9.51 - 2.63 points
    assert (w.text, w.sub, w.source, w.value) == ("+6.88 pt", "", "paper", pytest.approx(6.88))
    w = d[col(t, "WER change", "ours")]                                         # (0.12 - 0.10) x 100
    assert (w.text, w.sub, w.source, w.value) == ("+2.00 pt", "", "ours", pytest.approx(2.0))
    assert q[0] == Cell("Quantized (int8 dynamic)", "ours: int8-dynamic: not in this run")
    assert q[col(t, "GPU speed-up (warm)", "paper")] == Cell("n/a", "", "paper")  # the paper has no int8 GPU time
    assert q[col(t, "Energy saved (GPU)", "paper")] == Cell("n/a", "", "paper")
    assert p[0] == Cell("(not in the paper)", "ours: p")                      # no layer count: the name alone
    groups = ("Smaller by", "CPU speed-up (warm)", "GPU speed-up (warm)", "WER change", "Energy saved (GPU)")
    assert [p[col(t, g, "paper")] for g in groups] == [Cell("\u2014", "", "paper")] * 5
    assert p[col(t, "WER change", "ours")] == Cell("n/a", "not measured", "ours")
    assert p[col(t, "Smaller by", "ours")].value == 1.0                         # 400 MB / 400 MB


def test_table3_devices_labels_and_the_ratio_row() -> None:
    cpu = frame()[lambda f: f["device"] == "cpu"]
    assert table3(cpu).rows[0][col(table3(cpu), "GPU time", "ours")] == Cell("n/a", "no GPU in this run", "ours")
    t = table3(frame())                                     # a GPU in the run, none for these two variants
    assert t.rows[0][col(t, "GPU time", "ours")] == Cell("n/a", "not measured", "ours")
    assert t.rows[2][5:] == [Cell("", "", "ours"), Cell("", "", "ours"), Cell("")]
    # GPU times 0.5 s (distill-L4) and 0.6 s (max-pool): 0.6 / 0.5 = 1.2; the max-pool student's two repeats
    # differ in WER and parameters, and those cells still show no spread
    gpu = pd.DataFrame([row("distill-L4", "distill-L4", device="cuda:0", layers=4, e2e_s=0.5),
                        row("mp", "maxpool-conv4", device="cuda:0", layers=4, conv_layers=4, e2e_s=0.6, wer=0.16,
                            params=1_200_000)])
    t = table3(pd.concat([frame(), gpu], ignore_index=True))
    r = t.rows[2][col(t, "GPU time", "ours")]
    assert (r.text, r.source, r.value) == ("1.20x", "ours", pytest.approx(1.2))
    mp = t.rows[1]
    assert (mp[col(t, "WER", "ours")].text, mp[col(t, "WER", "ours")].sub) == ("15.50 %", "")
    assert (mp[col(t, "Params", "ours")].text, mp[col(t, "Params", "ours")].sub) == ("1.1 M", "")
    assert t.rows[1][col(t, "GPU time", "ours")].value == 0.6
    # no max-pool student: "not in this run"; one without a layer count: its name alone
    assert table3(frame()[lambda f: f["variant"] != "mp"]).rows[1][-1] == Cell("not in this run")
    assert table3(frame().assign(transformer_layers=lambda f: f["transformer_layers"].where(
        f["variant"] != "mp"))).rows[1][-1] == Cell("mp")


def test_table_energy_labels_methods_and_device_order() -> None:
    # the teacher's CPU repeats: one estimated, two measured -> "mixed"; two methods, listed in order
    df = frame().assign(energy_measured=[True, False, True] + [True] * 8,
                        energy_method=["rapl", "codecarbon", "rapl"] + ["rapl"] * 8)
    first = [r for r in table_energy(df).rows if r[0].text == "ours"][0]
    assert [c.text for c in first[:3]] + [c.text for c in first[6:8]] == [
        "ours", "teacher", "CPU (cpu)", "mixed", "codecarbon, rapl; total of package-0 (measured)"]
    # the CPU row before the GPU row of a variant, whatever the devices are called
    named = frame().replace({"device": {"cpu": "host"}})
    rows = [(r[1].text, r[2].text) for r in table_energy(named).rows if r[0].text == "ours"]
    assert rows[:2] == [("teacher", "CPU (host)"), ("teacher", "GPU (cuda:0)")]
    t4 = table_energy(frame())
    per_h = "Per hour of audio"
    assert t4.title == "Table 4" and set(t4.columns) >= {("", "Source"), ("", "Model"), ("", "Device"),
                                                         (per_h, "Energy"), (per_h, "CO\u2082"), ("", "Mean power"),
                                                         ("", "Energy figure"), ("", "Method")}


def test_headings() -> None:
    """The headings a reader sees and Table.column looks cells up by (the shading follows "paper" / "ours")."""
    t1, t1b, t2, t2a, t3 = (f(frame()) for f in (table1, table1_ratios, table2, table2_arch, table3))
    assert [t.title for t in (t1, t1b, t2, t2a, t3)] == ["Table 1", "Table 1b", "Table 2",
                                                         "Table 2 (architecture only)", "Table 3"]

    def pairs(*groups: str) -> list[tuple[str, str]]:
        return [(g, w) for g in groups for w in ("paper", "ours")]
    assert t1.columns == [("", "Model (paper / ours)"), *pairs("Params", "Size", "CPU time", "GPU time", "WER",
                                                                "CO\u2082 (GPU)", "Energy (GPU)"),
                          ("Variant peak memory", "ours")]
    assert t1b.columns == [("", "Model (paper / ours)"), *pairs("Smaller by", "CPU speed-up (warm)",
                                                                "GPU speed-up (warm)", "WER change",
                                                                "Energy saved (GPU)")]
    assert t2.columns == [("", "Layers kept"), *[("Paper (GPU)", c) for c in ("Layers", "Params", "Size", "Time",
                                                                             "Speed-up", "WER")],
                          *[("Ours (GPU)", c) for c in ("Layers", "Params", "Size", "Time (warm)",
                                                        "Speed-up (warm)", "WER")]]
    p, o = "Paper (GPU, trained)", "Ours (large, random weights)"
    assert t2a.columns == [("", "Layers"), (p, "Params"), (p, "Size"), (p, "Time"), (p, "Speed-up"), (o, "Params"),
                           (o, "Size"), *[(f"Ours: {k}", f"{c} (warm)") for k in ("CPU", "GPU")
                                          for c in ("Time", "Speed-up")]]
    assert t3.columns == [("", "Conv layers"), *pairs("GPU time", "CPU time"), ("WER", "ours"), ("Params", "ours"),
                          ("", "Ours")]
