"""reports.savings: the extrapolation arithmetic, ours from the fixture, the paper's 19 t vs its stated 21 t."""
from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pandas as pd
import pytest

from core.errors import FootprintError
from reports.load import load_results
from reports.savings import (all_savings, compute_savings, default_pairs, fmt_energy, fmt_hours, fmt_mass,
                             paper_savings, savings_frame)

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "results_small"


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return load_results(FIXTURE)


def _per_repeat(variant: str, device: str, col: str) -> dict[int, float]:
    """Straight from the CSV with the csv module: an independent check on the pandas path."""
    with (FIXTURE / "results.csv").open(newline="") as fh:
        return {int(r["repeat"]): float(r[col]) for r in csv.DictReader(fh)
                if r["variant"] == variant and r["device"] == device}


def test_paper_extrapolation_both_figures() -> None:
    p = paper_savings()
    assert p.computed_kg == pytest.approx(0.0019 / 5.4 * 54e6)
    assert p.computed_kg / 1000 == pytest.approx(19.0, abs=0.05)   # its own arithmetic
    assert p.stated_kg == 21_000                                     # what it states
    assert p.formula == "0.0019 kg / 5.4 h x 54 million h = 19 t; the paper states about 21 t"
    assert p.computed_kwh == pytest.approx(0.0051 / 5.4 * 54e6)
    # At another scale the stated 21 t does not apply.
    other = paper_savings(1e6)
    assert other.stated_kg is None and other.computed_kg == pytest.approx(0.0019 / 5.4 * 1e6)


def test_ours_from_fixture_paired_per_repeat(df: pd.DataFrame) -> None:
    (cpu,) = compute_savings(df, "baseline", "distill-L4", device="cpu")
    a = _per_repeat("teacher", "cpu", "kwh_per_audio_hour")
    b = _per_repeat("distill-L4", "cpu", "kwh_per_audio_hour")
    diffs = [a[r] - b[r] for r in sorted(a)]
    assert cpu.paired and cpu.kwh_saved_per_hour.n == 3
    assert cpu.kwh_saved_per_hour.median == pytest.approx(statistics.median(diffs))
    assert cpu.kwh_saved_per_hour.lo == pytest.approx(min(diffs))
    assert cpu.kwh_saved_per_hour.hi == pytest.approx(max(diffs))
    assert cpu.kwh_saved_total.median == pytest.approx(statistics.median(diffs) * 54e6)
    assert cpu.kwh_saved_total.lo == pytest.approx(min(diffs) * 54e6)
    ca = _per_repeat("teacher", "cpu", "co2_kg_per_audio_hour")
    cb = _per_repeat("distill-L4", "cpu", "co2_kg_per_audio_hour")
    assert cpu.co2_kg_saved_total.median == pytest.approx(statistics.median(ca[r] - cb[r] for r in ca) * 54e6)
    assert cpu.kwh_per_hour_from.median == pytest.approx(statistics.median(a.values()))
    assert cpu.fraction_saved == pytest.approx(1 - statistics.median(b.values()) / statistics.median(a.values()))
    assert cpu.carbon_intensity_g_per_kwh == 475.0
    assert cpu.carbon_intensity_source == "CodeCarbon global average (no country given)"
    assert cpu.measured is False and cpu.energy_method == "codecarbon-offline"
    assert "x 54 million h" in cpu.formula and "475 g/kWh" in cpu.formula


def test_given_hours_scale_linearly(df: pd.DataFrame) -> None:
    (a,) = compute_savings(df, "teacher", "distill-L4", device="cuda", hours=54e6)
    (b,) = compute_savings(df, "teacher", "distill-L4", device="cuda", hours=1000)
    assert b.co2_kg_saved_total.median == pytest.approx(a.co2_kg_saved_total.median / 54_000)
    assert a.measured is True and a.device_kind == "GPU"


def test_unpaired_spread_is_worst_and_best_pairing(df: pd.DataFrame) -> None:
    shuffled = df.copy()
    m = (shuffled["variant"] == "distill-L4") & (shuffled["device"] == "cpu")
    shuffled.loc[m, "repeat"] = shuffled.loc[m, "repeat"] + 10  # no longer pairs up
    (s,) = compute_savings(shuffled, "baseline", "distill-L4", device="cpu")
    a = _per_repeat("teacher", "cpu", "kwh_per_audio_hour").values()
    b = _per_repeat("distill-L4", "cpu", "kwh_per_audio_hour").values()
    assert not s.paired
    assert s.kwh_saved_per_hour.median == pytest.approx(statistics.median(a) - statistics.median(b))
    assert s.kwh_saved_per_hour.lo == pytest.approx(min(a) - max(b))
    assert s.kwh_saved_per_hour.hi == pytest.approx(max(a) - min(b))


def test_falls_back_to_energy_over_audio(df: pd.DataFrame) -> None:
    stripped = df.assign(kwh_per_audio_hour=float("nan"), co2_kg_per_audio_hour=float("nan"), co2_kg=float("nan"))
    (s,) = compute_savings(stripped, "baseline", "distill-L4", device="cpu")
    (ref,) = compute_savings(df, "baseline", "distill-L4", device="cpu")
    assert s.kwh_saved_per_hour.median == pytest.approx(ref.kwh_saved_per_hour.median, rel=1e-4)
    assert s.co2_kg_saved_per_hour.median == pytest.approx(ref.co2_kg_saved_per_hour.median, rel=1e-4)


def test_default_pairs_and_frame(df: pd.DataFrame) -> None:
    assert default_pairs(df) == [("teacher", "distill-L4"), ("teacher", "int8-dynamic"),
                                 ("teacher", "distill-L4+int8")]
    items = all_savings(df)
    frame = savings_frame(items)
    assert list(zip(frame["to"], frame["device"])) == [("distill-L4", "cpu"), ("distill-L4", "cuda"),
                                                      ("int8-dynamic", "cpu"), ("distill-L4+int8", "cpu")]
    assert (frame["co2_kg_saved_total_min"] <= frame["co2_kg_saved_total"]).all()
    assert (frame["co2_kg_saved_total"] <= frame["co2_kg_saved_total_max"]).all()


def test_unknown_variant_is_one_line(df: pd.DataFrame) -> None:
    with pytest.raises(FootprintError, match="^nope: no such variant or recipe"):
        compute_savings(df, "nope", "distill-L4")


def test_no_common_device(df: pd.DataFrame) -> None:
    assert compute_savings(df, "teacher", "int8-dynamic", device="cuda") == []


def test_units() -> None:
    assert fmt_mass(19_000) == "19 t" and fmt_mass(0.0019) == "1.9 g" and fmt_mass(2.5) == "2.5 kg"
    assert fmt_energy(51_000) == "51 MWh" and fmt_energy(0.0051) == "5.1 Wh" and fmt_energy(2e6) == "2 GWh"
    assert fmt_hours(54e6) == "54 million h" and fmt_hours(5.4) == "5.4 h"


def test_runner_shaped_results_use_one_scenario(df: pd.DataFrame) -> None:
    import importlib.util

    # Borrow the helper by path: 'tests' is not a package, and plain `pytest` does not put the root on sys.path.
    spec = importlib.util.spec_from_file_location("_tables_tests", Path(__file__).with_name("test_reports_tables.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.runner_shaped(df)
    assert default_pairs(r)[0] == ("embedded", "distill-L4")
    (cpu,) = compute_savings(r, "baseline", "distill-L4", device="cpu")
    (ref,) = compute_savings(df, "baseline", "distill-L4", device="cpu")
    assert cpu.kwh_saved_per_hour.median == pytest.approx(ref.kwh_saved_per_hour.median)
