"""reports.savings against hand-computed figures (tiny frames built here, every expected number worked out by hand).

These pin the arithmetic that mutation testing (tox -e mutation) found unguarded: the pairing rule, the worst/best
range when repeats do not pair, the scale factor, the unit boundaries of the formatters and the labels.
"""
from __future__ import annotations

import logging
import math

import pandas as pd
import pytest

from core.errors import FootprintError
from reports.savings import (_diff, _single, all_savings, compute_savings, default_pairs, fmt_energy, fmt_hours,
                             fmt_mass, paper_savings, resolve_variant, savings_frame, scaled)
from reports.stats import Stat


def row(variant: str, recipe: str, repeat: float, kwh_h: float, co2_h: float, device: str = "cpu",
        **kw: object) -> dict:
    r = {"variant": variant, "recipe": recipe, "weights": "trained", "device": device, "run_id": "r1",
         "repeat": repeat, "kwh_per_audio_hour": kwh_h, "co2_kg_per_audio_hour": co2_h, "energy_kwh": float("nan"),
         "co2_kg": float("nan"), "audio_s": 3600.0, "carbon_intensity_g_per_kwh": 500.0,
         "carbon_intensity_source": "fixed", "energy_measured": True, "energy_method": "rapl"}
    r.update(kw)
    return r


# teacher 10, 12, 11 kWh/h and student 4, 5, 7 on repeats 0, 1, 2: differences 6, 7, 4 -> median 6, range 4-7;
# CO2 5, 6, 5.5 vs 2, 2.5, 3.5: differences 3, 3.5, 2 -> median 3, range 2-3.5
TEACHER = [(0, 10.0, 5.0), (1, 12.0, 6.0), (2, 11.0, 5.5)]
STUDENT = [(0, 4.0, 2.0), (1, 5.0, 2.5), (2, 7.0, 3.5)]


def frame(student=STUDENT, teacher=TEACHER, **kw: object) -> pd.DataFrame:
    rows = [row("teacher", "baseline", r, k, c, **kw) for r, k, c in teacher]
    rows += [row("student", "distill-L4", r, k, c, **kw) for r, k, c in student]
    return pd.DataFrame(rows)


def test_paired_per_repeat_and_scaled() -> None:
    (s,) = compute_savings(frame(), "teacher", "student", hours=1000.0)
    assert s.paired is True
    assert (s.from_variant, s.to_variant, s.device, s.target_hours) == ("teacher", "student", "cpu", 1000.0)
    assert s.kwh_saved_per_hour == Stat(6.0, 4.0, 7.0, 3)
    assert s.co2_kg_saved_per_hour == Stat(3.0, 2.0, 3.5, 3)
    assert s.kwh_saved_total == Stat(6000.0, 4000.0, 7000.0, 3)
    assert s.co2_kg_saved_total == Stat(3000.0, 2000.0, 3500.0, 3)
    assert s.kwh_per_hour_from == Stat(11.0, 10.0, 12.0, 3) and s.kwh_per_hour_to == Stat(5.0, 4.0, 7.0, 3)
    assert s.fraction_saved == pytest.approx(6.0 / 11.0)
    assert s.carbon_intensity_g_per_kwh == 500.0
    assert (s.carbon_intensity_source, s.energy_method, s.measured) == ("fixed", "rapl", True)
    assert s.device_kind == "CPU"


def test_unpaired_gives_worst_and_best_pairings() -> None:
    # student only on repeats 0 and 1 (4, 6): teacher 11 [10, 12] n=3, student 5 [4, 6] n=2
    (s,) = compute_savings(frame(student=[(0, 4.0, 2.0), (1, 6.0, 3.0)]), "teacher", "student", hours=2.0)
    assert s.paired is False
    assert s.kwh_saved_per_hour == Stat(6.0, 10.0 - 6.0, 12.0 - 4.0, 2)
    assert s.kwh_saved_total == Stat(12.0, 8.0, 16.0, 2)


def test_unpaired_when_a_repeat_is_missing() -> None:
    df = frame()
    df.loc[df["variant"] == "student", "repeat"] = float("nan")
    (s,) = compute_savings(df, "teacher", "student", hours=1.0)
    assert s.paired is False and s.kwh_saved_per_hour == Stat(6.0, 10.0 - 7.0, 12.0 - 4.0, 3)


def test_missing_side_is_missing_and_not_paired() -> None:
    nan = float("nan")
    a = pd.DataFrame({"run_id": ["r"] * 2, "repeat": [0, 1], "x": [1.0, 2.0]})
    b = pd.DataFrame({"run_id": ["r"] * 2, "repeat": [0, 1], "x": [nan, nan]})
    got, paired = _diff(a, b, "x")
    assert paired is False and got.n == 0 and math.isnan(got.median)


def test_scaled_keeps_n_and_orders_range() -> None:
    assert scaled(Stat(2.0, 1.0, 3.0, 4), -2.0) == Stat(-4.0, -6.0, -2.0, 4)
    assert scaled(Stat(2.0, 1.0, 3.0, 4), 10.0) == Stat(20.0, 10.0, 30.0, 4)


def test_labels_joined_and_defaults() -> None:
    df = frame()
    df.loc[df["variant"] == "student", "carbon_intensity_source"] = "grid"
    df.loc[df["variant"] == "student", "energy_method"] = "codecarbon"
    df.loc[df["variant"] == "student", "energy_measured"] = False
    (s,) = compute_savings(df, "teacher", "student")
    assert s.carbon_intensity_source == "fixed; grid"
    assert s.energy_method == "codecarbon, rapl"
    assert s.measured is None
    df[["carbon_intensity_source", "energy_method", "energy_measured"]] = None
    (s,) = compute_savings(df, "teacher", "student")
    assert (s.carbon_intensity_source, s.energy_method, s.measured) == ("not recorded", "unknown", None)


def test_single_intensity(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="reports.savings"):
        assert _single(pd.Series([475.0, 475.0, None])) == 475.0
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="reports.savings"):
        assert _single(pd.Series([400.0, 500.0, 700.0])) == 500.0
    assert "differs" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="reports.savings"):
        assert _single(pd.Series([300.0, 600.0])) == 450.0
    assert "differs" in caplog.text
    assert _single(pd.Series(["475", "not a number", None])) == 475.0
    assert _single(pd.Series([None, None], dtype=object)) is None


def test_devices_cpu_kinds_first_and_only_shared() -> None:
    # "mps" sorts after "cuda:0" by name, but non-GPU devices come first; the student alone is on "cuda:1"
    rows = [row("teacher", "baseline", r, k, c, device=d) for d in ("cuda:0", "mps") for r, k, c in TEACHER]
    rows += [row("student", "distill-L4", r, k, c, device=d) for d in ("cuda:0", "mps", "cuda:1")
             for r, k, c in STUDENT]
    out = compute_savings(pd.DataFrame(rows), "teacher", "student")
    assert [s.device for s in out] == ["mps", "cuda:0"]
    assert [s.device for s in compute_savings(pd.DataFrame(rows), "teacher", "student", device="cuda:0")] == ["cuda:0"]


def test_no_shared_device_warns(caplog: pytest.LogCaptureFixture) -> None:
    rows = [row("teacher", "baseline", r, k, c, device="cpu") for r, k, c in TEACHER]
    rows += [row("student", "distill-L4", r, k, c, device="cuda:0") for r, k, c in STUDENT]
    with caplog.at_level(logging.WARNING, logger="reports.savings"):
        assert compute_savings(pd.DataFrame(rows), "teacher", "student") == []
    assert "no device has both teacher and student" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="reports.savings"):
        assert len(compute_savings(frame(), "teacher", "student")) == 1
    assert not caplog.records


def test_resolve_variant_by_recipe_and_error() -> None:
    df = frame()
    assert resolve_variant(df, "student") == "student"
    assert resolve_variant(df, "distill-L4") == "student"
    with pytest.raises(FootprintError, match=r"^nope: no such variant or recipe in the results "
                                             r"\(known: student, teacher\)$"):
        resolve_variant(df, "nope")


def test_default_pairs_skip_absent_and_duplicates() -> None:
    df = frame()
    assert default_pairs(df) == [("teacher", "student")]          # no int8-dynamic: no (teacher, None)
    # one variant under two recipes (distill-L4 and distill-L4+x): listed once
    extra = pd.DataFrame([row("student", "distill-L4+x", r, k, c) for r, k, c in STUDENT])
    assert default_pairs(pd.concat([df, extra], ignore_index=True)) == [("teacher", "student")]
    assert default_pairs(df[df["variant"] != "teacher"]) == []


def test_all_savings_hours_and_scenario() -> None:
    batched = frame(scenario="batched")
    loop = frame(scenario="paper-loop", student=[(0, 1.0, 2.0), (1, 2.0, 2.5), (2, 3.0, 3.5)])
    df = pd.concat([batched, loop], ignore_index=True)
    (s,) = all_savings(df, hours=10.0)
    assert s.target_hours == 10.0 and s.kwh_saved_total == Stat(60.0, 40.0, 70.0, 3)
    (s,) = all_savings(df, hours=10.0, scenario="paper-loop")
    # 10 - 1, 12 - 2, 11 - 3 = 9, 10, 8
    assert s.kwh_saved_per_hour == Stat(9.0, 8.0, 10.0, 3)


def test_paper_savings_fields() -> None:
    p = paper_savings(5.4)
    assert p.energy_saved_kwh == 0.0051 and p.co2_saved_kg == 0.0019 and p.test_hours == 5.4
    assert p.computed_kg == pytest.approx(0.0019) and p.computed_kwh == pytest.approx(0.0051)
    assert p.stated_kg is None


def test_formatters_at_their_boundaries() -> None:
    nan = float("nan")
    assert fmt_energy(nan) == "n/a" and fmt_energy(None) == "n/a"
    assert fmt_energy(1e6) == "1 GWh" and fmt_energy(2.5e6) == "2.5 GWh"
    assert fmt_energy(1_235_000.1) == "1.24 GWh"       # 1.2350001 rounds up: the divisor is exactly 1e6
    assert fmt_energy(1000.0) == "1 MWh" and fmt_energy(999.0) == "999 kWh"
    assert fmt_energy(1.0) == "1 kWh" and fmt_energy(1.5) == "1.5 kWh"
    assert fmt_energy(0.5) == "500 Wh" and fmt_energy(-2000.0) == "-2 MWh"
    assert fmt_hours(1e6) == "1 million h" and fmt_hours(54e6) == "54 million h" and fmt_hours(5.4) == "5.4 h"
    assert fmt_mass(nan) == "n/a" and fmt_mass(None) == "n/a"
    assert fmt_mass(1000.0) == "1 t" and fmt_mass(9990.0) == "9.99 t" and fmt_mass(999.0) == "999 kg"
    assert fmt_mass(1.0) == "1 kg" and fmt_mass(1.5) == "1.5 kg" and fmt_mass(0.999) == "999 g"
    assert fmt_mass(-0.5) == "-500 g"


def test_formula_text() -> None:
    (s,) = compute_savings(frame(), "teacher", "student", hours=1e6)
    assert s.formula == "(11 - 5) kWh/h x 1 million h = 6 GWh; CO\u2082: 6 GWh x 500 g/kWh = 3e+03 t"


def test_savings_frame_columns_and_values() -> None:
    (s,) = compute_savings(frame(), "teacher", "student", hours=1000.0)
    got = savings_frame([s]).iloc[0].to_dict()
    assert got == pytest.approx({
        "from": "teacher", "to": "student", "device": "cpu", "hours": 1000.0, "kwh_per_hour_from": 11.0,
        "kwh_per_hour_to": 5.0, "kwh_saved_per_hour": 6.0, "kwh_saved_per_hour_min": 4.0,
        "kwh_saved_per_hour_max": 7.0, "co2_kg_saved_per_hour": 3.0, "kwh_saved_total": 6000.0,
        "co2_kg_saved_total": 3000.0, "co2_kg_saved_total_min": 2000.0, "co2_kg_saved_total_max": 3500.0,
        "fraction_saved": 6.0 / 11.0, "n": 3, "paired": True, "carbon_intensity_g_per_kwh": 500.0,
        "carbon_intensity_source": "fixed", "energy_method": "rapl", "measured": True})
