"""reports.stats against hand-computed medians, ranges, per-hour figures, formats and orderings."""
from __future__ import annotations

import logging
import math

import pandas as pd
import pytest

from core.errors import FootprintError
from reports.stats import (MISSING, SUMMARY_COLUMNS, Stat, _fmt_time, _joined, _measured, choose_scenario,
                           co2_per_hour, device_kind, fmt, fmt_num, is_gpu, kwh_per_hour, layers_of, on,
                           ordered_variants, random_weights, recipe_rank, scenarios, select_scenario, stat, summary,
                           time_column, trained, variant_for_recipe)

nan = float("nan")


def test_stat_median_range_n() -> None:
    assert stat([3.0, 1.0, 2.0, 10.0]) == Stat(2.5, 1.0, 10.0, 4)
    assert stat(pd.Series([5.0, None, 7.0], dtype=object)) == Stat(6.0, 5.0, 7.0, 2)
    m = stat([None, nan])
    assert m.n == 0 and math.isnan(m.median) and m.ok is False and m is MISSING


def test_stat_ok_and_rel_spread() -> None:
    assert Stat(4.0, 3.0, 5.0, 3).rel_spread == 0.5
    assert Stat(4.0, 3.0, 5.0, 1).ok is True
    assert Stat(4.0, 3.0, 5.0, 0).ok is False and math.isnan(Stat(4.0, 3.0, 5.0, 0).rel_spread)
    assert Stat(nan, 3.0, 5.0, 2).ok is False
    assert math.isnan(Stat(0.0, -1.0, 1.0, 2).rel_spread)          # no relative spread around 0


def test_devices() -> None:
    assert is_gpu("cuda") and is_gpu("cuda:1") and is_gpu("gpu0")
    assert not is_gpu("cpu") and not is_gpu(None) and not is_gpu(3) and not is_gpu("xcuda")
    assert (device_kind("cuda:0"), device_kind("cpu"), device_kind(None)) == ("GPU", "CPU", "CPU")
    df = pd.DataFrame({"device": ["cpu", "cuda:0", "mps", "gpu1"], "x": [1, 2, 3, 4]})
    assert list(on(df, "GPU")["x"]) == [2, 4] and list(on(df, "CPU")["x"]) == [1, 3]
    assert len(on(df.iloc[0:0], "GPU")) == 0


def sc(values: list) -> pd.DataFrame:
    return pd.DataFrame({"scenario": values, "i": range(len(values))})


def test_scenarios_and_choice() -> None:
    assert scenarios(pd.DataFrame({"x": [1]})) == []
    assert scenarios(sc(["b", "a", None, "b", "arch"])) == ["a", "arch", "b"]
    assert choose_scenario(pd.DataFrame({"x": [1]})) is None
    assert choose_scenario(sc(["arch", None])) is None
    assert choose_scenario(sc(["paper-loop", "batched", "x"])) == "batched"
    assert choose_scenario(sc(["paper-loop", "x", "x"])) == "paper-loop"
    # neither preferred one: the most common, arch rows not counted
    assert choose_scenario(sc(["x", "y", "y", "arch", "arch", "arch"])) == "y"
    assert choose_scenario(sc(["x", "y", "batched"]), "x") == "x"
    with pytest.raises(FootprintError, match=r"^scenario 'z' not in the results \(found: batched, x\)$"):
        choose_scenario(sc(["x", "batched", "arch"]), "z")
    with pytest.raises(FootprintError, match=r"\(found: no scenario column\)$"):
        choose_scenario(pd.DataFrame({"x": [1]}), "z")


def test_select_scenario_keeps_arch_and_unlabelled_rows() -> None:
    df = sc(["batched", "paper-loop", None, "arch", "batched"])
    assert list(select_scenario(df)["i"]) == [0, 2, 3, 4]
    assert list(select_scenario(df, "paper-loop")["i"]) == [1, 2, 3]
    plain = pd.DataFrame({"x": [1, 2]})
    assert select_scenario(plain) is plain


def test_weights_filters() -> None:
    df = pd.DataFrame({"weights": ["trained", None, "random", "random"], "i": [0, 1, 2, 3]})
    assert list(trained(df)["i"]) == [0, 1] and list(random_weights(df)["i"]) == [2, 3]


def test_variant_for_recipe(caplog: pytest.LogCaptureFixture) -> None:
    df = pd.DataFrame({"variant": ["b", "a", "distill-L4", "r", None],
                       "recipe": ["distill-L4", "distill-L4", "distill-L4", "baseline", "baseline"],
                       "weights": ["trained", "trained", "trained", "random", None]})
    with caplog.at_level(logging.INFO, logger="reports.stats"):
        assert variant_for_recipe(df, "distill-L4") == "distill-L4"      # the one named like the recipe
    assert "recipe distill-L4 has 3 variants" in caplog.text
    assert variant_for_recipe(df[df["variant"] != "distill-L4"], "distill-L4") == "a"   # else the first by name
    assert variant_for_recipe(df, "baseline") is None                     # random weights / no name only
    assert variant_for_recipe(df, "nope") is None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="reports.stats"):
        assert variant_for_recipe(df[df["variant"] != "b"], "distill-L4") == "distill-L4"
    assert "recipe distill-L4 has 2 variants (a, distill-L4); using distill-L4" in caplog.text
    caplog.clear()
    one = df[df["variant"] == "b"]
    with caplog.at_level(logging.INFO, logger="reports.stats"):
        assert variant_for_recipe(one, "distill-L4") == "b"
    assert not caplog.records


def test_time_column() -> None:
    df = pd.DataFrame({"e2e_s": [nan, nan], "model_s": [nan, 1.0], "wall_s": [2.0, 3.0]})
    assert time_column(df) == "model_s"
    assert time_column(df, "wall_s") == "wall_s"
    assert time_column(df.drop(columns=["model_s"])) == "wall_s"
    assert time_column(pd.DataFrame({"x": [1]}), "e2e_s") == "e2e_s"
    assert time_column(pd.DataFrame({"e2e_s": [1.0], "model_s": [1.0]}), "model_s") == "model_s"


def test_per_hour_figures() -> None:
    # stored value first; else energy over audio hours: 0.5 kWh over 1800 s = 1 kWh/h
    df = pd.DataFrame({"kwh_per_audio_hour": [2.0, nan, nan], "energy_kwh": [9.0, 0.5, 0.25],
                       "audio_s": [3600.0, 1800.0, 900.0], "co2_kg_per_audio_hour": [7.0, nan, nan],
                       "co2_kg": [9.0, 0.1, nan], "carbon_intensity_g_per_kwh": [1.0, 1.0, 400.0]})
    assert list(kwh_per_hour(df)) == [2.0, 1.0, 1.0]
    # stored; co2 over audio hours (0.1 kg / 0.5 h); energy x intensity (1 kWh/h x 400 g/kWh = 0.4 kg/h)
    assert list(co2_per_hour(df)) == pytest.approx([7.0, 0.2, 0.4])


def test_layers_of() -> None:
    assert layers_of("distill-L4") == 4 and layers_of("arch-large-L24+int8") == 24
    assert layers_of("baseline") is None and layers_of(None) is None and layers_of("L4") is None


def test_joined_and_measured() -> None:
    assert _joined(pd.Series(["rapl", None, "codecarbon", "rapl"])) == "codecarbon, rapl"
    assert _joined(pd.Series([None], dtype=object)) == "unknown"
    assert _measured(pd.Series([True, True, None])) is True
    assert _measured(pd.Series([False, None])) is False
    assert _measured(pd.Series([True, False])) is None and _measured(pd.Series([None], dtype=object)) is None


def test_fmt_every_kind() -> None:
    assert fmt_num(None, "int") == "n/a" and fmt_num(nan, "pct") == "n/a" and fmt(nan, "size") == "n/a"
    assert fmt(94_400_000, "params") == "94.4 M"
    assert fmt(1_235_000.1, "params") == "1.24 M"        # 1.2350001 rounds up: the divisor is exactly 1e6
    assert fmt(361.04, "size") == "361 MB" and fmt(100.0, "size") == "100 MB" and fmt(99.94, "size") == "99.9 MB"
    assert fmt(-150.0, "size") == "-150 MB"
    assert fmt(3.14159, "pct") == "3.14 %" and fmt(0.001234, "kg") == "0.00123 kg"
    assert fmt(12.345, "kwh") == "12.3 kWh" and fmt(3.456, "ratio") == "3.46x"
    assert fmt(1.234, "points") == "+1.23 pt" and fmt(-0.5, "points") == "-0.50 pt"
    assert fmt(2.5, "int") == "2" and fmt(3.5, "int") == "4"
    assert fmt(254.4, "w") == "254 W" and fmt(10.0, "w") == "10 W" and fmt(9.87, "w") == "9.9 W"
    assert fmt(-12.0, "w") == "-12 W"
    assert fmt(1.2345, "wh") == "1.23 Wh" and fmt(0.0456, "g") == "0.0456 g"
    assert fmt_num(7, "int") == "7"


def test_fmt_time_bands() -> None:
    assert _fmt_time(123.4) == "123" and _fmt_time(100.0) == "100" and _fmt_time(-150.0) == "-150"
    assert _fmt_time(99.96) == "100.0" and _fmt_time(10.0) == "10.0" and _fmt_time(12.34) == "12.3"
    assert _fmt_time(-12.34) == "-12.3"
    assert _fmt_time(9.876) == "9.88" and _fmt_time(1.0) == "1.00" and _fmt_time(-2.5) == "-2.50"
    assert _fmt_time(0.12345) == "0.123" and _fmt_time(0.999) == "0.999" and _fmt_time(-0.5) == "-0.5"
    assert fmt(1.5, "time") == "1.50 s"


def test_recipe_rank_and_order() -> None:
    assert recipe_rank("baseline", 12.0) == (0, -12.0, "baseline")
    assert recipe_rank("distill-L4", 4.0) == (1, -4.0, "distill-L4")
    assert recipe_rank("distill-L4+int8-dynamic", 4.0) == (3, -4.0, "distill-L4+int8-dynamic")
    assert recipe_rank("int8-dynamic", nan) == (2, -0.0, "int8-dynamic")
    assert recipe_rank("arch-large-L24", 24.0) == (4, -24.0, "arch-large-L24")
    assert recipe_rank(None) == (2, -0.0, "")
    assert recipe_rank("xdistill-L4")[0] == 2 and recipe_rank("distill-L4x")[0] == 2
    df = pd.DataFrame({"variant": ["i8", "s2", "t", "s4", "arch", "s4q", "t"],
                       "recipe": ["int8-dynamic", "distill-L2", "baseline", "distill-L4", "arch-large-L24",
                                  "distill-L4+int8-dynamic", "baseline"],
                       "transformer_layers": [12, 2, 12, 4, 24, 4, 11]})
    assert ordered_variants(df) == ["t", "s4", "s2", "i8", "s4q", "arch"]
    same = pd.DataFrame({"variant": ["b", "a"], "recipe": ["x", "x"], "transformer_layers": [1, 1]})
    assert ordered_variants(same) == ["a", "b"]


def rows() -> pd.DataFrame:
    """teacher on cpu, three repeats with hand-picked values; student on cuda:0, one repeat."""
    base = {"recipe": "baseline", "weights": "trained", "device": "cpu", "batch_size": 8, "n_utts": 20,
            "audio_s": 3600.0, "rtfx": 10.0, "wer": 0.05, "cer": 0.02, "params": 1e6, "size_mb": 4.0,
            "size_on_disk_mb": 3.0, "sparsity": 0.0, "conv_layers": 7, "transformer_layers": 12,
            "kwh_per_audio_hour": nan, "co2_kg_per_audio_hour": nan, "co2_kg": nan,
            "carbon_intensity_g_per_kwh": 500.0, "energy_method": "rapl", "energy_measured": True,
            "variant_peak_mb": 100.0, "variant": "teacher", "model_s": 1.0}
    t = [dict(base, e2e_s=e, wall_s=w, energy_kwh=k, energy_j=j) for e, w, k, j in
         ((2.0, 4.0, 0.1, 400.0), (3.0, 5.0, 0.2, 1000.0), (7.0, 10.0, 0.3, 3000.0))]
    s = dict(base, variant="student", recipe="distill-L4", device="cuda:0", e2e_s=1.0, wall_s=2.0, energy_kwh=0.05,
             energy_j=100.0, energy_method="nvml", energy_measured=False, co2_kg=0.01, transformer_layers=4,
             variant_peak_mb=nan)
    return pd.DataFrame(t + [s])


def test_summary_by_hand() -> None:
    out = summary(rows())
    assert list(out.columns) == SUMMARY_COLUMNS
    t, s = (out[out["variant"] == v].iloc[0].to_dict() for v in ("teacher", "student"))
    assert t == pytest.approx({
        "variant": "teacher", "recipe": "baseline", "weights": "trained", "device": "cpu", "device_kind": "CPU",
        "n": 3, "time_s": 3.0, "time_lo": 2.0, "time_hi": 7.0, "time_col": "e2e_s", "batch_size": 8.0,
        "n_utts": 20.0, "audio_s": 3600.0, "model_s": 1.0, "rtfx": 10.0, "wer": 0.05, "cer": 0.02,
        "params": 1e6, "size_mb": 4.0, "size_on_disk_mb": 3.0, "sparsity": 0.0, "conv_layers": 7.0,
        "transformer_layers": 12.0,
        # energy over 1 h of audio: 0.1, 0.2, 0.3 kWh/h; CO2 = kWh/h x 500 g/kWh / 1000
        "kwh_per_audio_hour": 0.2, "kwh_per_audio_hour_lo": 0.1, "kwh_per_audio_hour_hi": 0.3,
        "co2_kg_per_audio_hour": 0.1, "energy_kwh": 0.2, "co2_kg": nan,
        # power: 400 J / 4 s, 1000 / 5, 3000 / 10 = 100, 200, 300 W
        "power_w": 200.0, "energy_method": "rapl", "energy_measured": True, "variant_peak_mb": 100.0},
        nan_ok=True)
    assert s["device_kind"] == "GPU" and s["n"] == 1 and s["co2_kg_per_audio_hour"] == 0.01
    assert s["co2_kg"] == 0.01 and s["power_w"] == 50.0
    assert s["energy_measured"] is False and s["energy_method"] == "nvml"
    assert math.isnan(s["variant_peak_mb"]) and s["time_s"] == 1.0


def test_summary_scenarios_and_time_column() -> None:
    df = rows().assign(scenario="batched")
    loop = rows().assign(scenario="paper-loop", e2e_s=100.0)
    both = pd.concat([df, loop], ignore_index=True)
    assert summary(both).set_index("variant").loc["teacher", "time_s"] == 3.0
    assert summary(both, all_scenarios=True).set_index("variant").loc["teacher", "n"] == 6
    assert summary(both, all_scenarios=True).set_index("variant").loc["teacher", "time_hi"] == 100.0
    out = summary(rows(), time_col="wall_s").set_index("variant")
    assert out.loc["teacher", "time_s"] == 5.0 and out.loc["teacher", "time_col"] == "wall_s"
    old = summary(rows().drop(columns=["variant_peak_mb"]))
    assert old["variant_peak_mb"].isna().all()
    assert list(summary(rows())["variant"]) == ["student", "teacher"]        # sorted by variant
    assert list(summary(rows().iloc[0:0]).columns) == SUMMARY_COLUMNS
    # a row without a device is summarised, not dropped
    nodev = summary(rows().assign(device=[None, None, None, "cuda:0"]))
    assert len(nodev) == 2 and nodev.set_index("variant").loc["teacher", "n"] == 3
