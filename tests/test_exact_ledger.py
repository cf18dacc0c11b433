"""reports.ledger by hand: making cost, saving per hour, break-even speech and the net saving at scale, on tiny
frames built here (every expected number worked out in the comments); "not recorded" is never a zero."""
from __future__ import annotations

import logging
import math

import pandas as pd
import pytest

from reports.html import summary_html
from reports.ledger import (NOT_RECORDED, MakingCost, break_even_speech_hours, fmt_speech_hours, ledger,
                            ledger_frame, ledger_table, making_cost, net)
from reports.savings import all_savings
from reports.stats import MISSING, Stat
from reports.tables import table_energy

INF = float("inf")


def row(variant: str, recipe: str, repeat: int, kwh_h: float, co2_h: float, device: str = "cpu",
        **kw: object) -> dict:
    r = {"variant": variant, "recipe": recipe, "weights": "trained", "device": device, "run_id": "r1",
         "repeat": repeat, "kwh_per_audio_hour": kwh_h, "co2_kg_per_audio_hour": co2_h, "energy_kwh": 1.0,
         "energy_j": 3.6e6, "wall_s": 100.0, "co2_kg": 0.5, "audio_s": 3600.0, "carbon_intensity_g_per_kwh": 500.0,
         "carbon_intensity_source": "fixed", "energy_measured": True, "energy_method": "rapl",
         "transformer_layers": 12 if recipe == "baseline" else 4}
    r.update(kw)
    return r


# teacher 10, 12, 11 kWh/h; student 4, 5, 7 on repeats 0-2: saved 6, 7, 4 -> median 6 kWh/h, range 4-7
# CO2 5, 6, 5.5 vs 2, 2.5, 3.5: saved 3, 3.5, 2 -> median 3 kg/h, range 2-3.5
TEACHER = [(0, 10.0, 5.0), (1, 12.0, 6.0), (2, 11.0, 5.5)]
STUDENT = [(0, 4.0, 2.0), (1, 5.0, 2.5), (2, 7.0, 3.5)]
# the student cost 30 kWh and 15 kg CO2 to make (2 h of distillation); the teacher 500 kWh (its pre-training)
MADE = {"making_wall_s": 7200.0, "making_energy_kwh": 30.0, "making_co2_kg": 15.0,
        "making_label": "estimated (estimated from logged time)", "making_measured": "False"}
TEACHER_MADE = {"making_wall_s": 36000.0, "making_energy_kwh": 500.0, "making_co2_kg": 250.0,
                "making_label": "measured (nvml)", "making_measured": "True"}


def frame(student_made: dict | None = MADE, student=STUDENT) -> pd.DataFrame:
    rows = [row("teacher", "baseline", r, k, c, **TEACHER_MADE) for r, k, c in TEACHER]
    rows += [row("student", "distill-L4", r, k, c, **(student_made or {})) for r, k, c in student]
    return pd.DataFrame(rows)


def test_break_even_by_hand() -> None:
    assert break_even_speech_hours(30.0, 6.0) == 5.0              # 30 kWh / 6 kWh per hour
    assert break_even_speech_hours(0.0, 6.0) == 0.0               # free to make: pays back at once
    assert break_even_speech_hours(30.0, 0.0) == INF              # no saving: never
    assert break_even_speech_hours(30.0, -1.0) == INF             # heavier than the teacher: never
    assert break_even_speech_hours(float("nan"), -1.0) == INF     # no saving pays back any cost
    assert math.isnan(break_even_speech_hours(float("nan"), 6.0))  # making cost unknown
    assert math.isnan(break_even_speech_hours(30.0, float("nan")))  # saving unmeasured
    assert math.isnan(break_even_speech_hours(None, 6.0))          # type: ignore[arg-type]


def test_net_shifts_median_and_range() -> None:
    assert net(Stat(6000.0, 4000.0, 7000.0, 3), 30.0) == Stat(5970.0, 3970.0, 6970.0, 3)
    assert net(Stat(6000.0, 4000.0, 7000.0, 3), float("nan")) == MISSING
    assert net(MISSING, 30.0) == MISSING


def test_ledger_by_hand() -> None:
    teacher, student = ledger(frame(), hours=1000.0)
    assert (teacher.variant, teacher.baseline, teacher.savings) == ("teacher", True, None)
    assert teacher.making == MakingCost(500.0, 250.0, 36000.0, "measured (nvml)", True)
    assert math.isnan(teacher.break_even_hours) and teacher.net_kwh == MISSING
    assert (student.variant, student.device, student.baseline) == ("student", "cpu", False)
    assert student.making == MakingCost(30.0, 15.0, 7200.0, "estimated (estimated from logged time)", False)
    assert student.kwh_saved_per_hour == 6.0
    assert student.break_even_hours == 5.0                         # 30 / 6
    assert student.net_kwh == Stat(5970.0, 3970.0, 6970.0, 3)      # 6 x 1000 - 30 (4 x 1000 - 30, 7 x 1000 - 30)
    assert student.net_co2_kg == Stat(2985.0, 1985.0, 3485.0, 3)   # 3 x 1000 - 15 (2 x 1000 - 15, 3.5 x 1000 - 15)
    f = ledger_frame([teacher, student])
    assert f.loc[1, ["making_kwh", "kwh_saved_per_hour", "break_even_hours", "net_kwh", "net_co2_kg"]].tolist() == \
        [30.0, 6.0, 5.0, 5970.0, 2985.0]


def test_same_saving_as_the_savings_summary() -> None:
    """The ledger's saving per hour and at scale are reports.savings' own figures, not a second computation."""
    (s,) = all_savings(frame(), hours=1000.0)
    (e,) = [e for e in ledger(frame(), hours=1000.0) if not e.baseline]
    assert e.savings == s


def test_unknown_making_cost_is_not_recorded_never_zero() -> None:
    for made in (None, {"making_label": NOT_RECORDED, "making_energy_kwh": None, "making_co2_kg": "",
                        "making_wall_s": None, "making_measured": None}):
        df = frame(student_made=made)
        (e,) = [e for e in ledger(df, hours=1000.0) if not e.baseline]
        assert e.making.label == NOT_RECORDED and not e.making.recorded and math.isnan(e.making.energy_kwh)
        assert math.isnan(e.break_even_hours) and e.net_kwh == MISSING and e.net_co2_kg == MISSING
        t = ledger_table([e], hours=1000.0)
        cells = {name: t.column(g, name)[0] for g, name in t.columns}
        for name in ("Energy", "Wall clock", "Break-even speech", "Net saved"):
            assert cells[name].text == NOT_RECORDED and cells[name].value is None, name
        assert cells["Net saved"].sub == "gross 6 MWh"                 # 6 kWh/h x 1000 h, still shown gross
        assert cells["Saved per hour"].value == 6.0
        assert not any(c.text.startswith("0 ") or c.text == "0" for c in t.rows[0])


def test_no_making_columns_at_all_is_not_recorded() -> None:
    """A run from before the making columns: every variant, the teacher included, reads 'not recorded'."""
    df = frame(student_made=None).drop(columns=list(TEACHER_MADE))
    m = making_cost(df)
    assert (m.label, m.measured, m.recorded) == (NOT_RECORDED, None, False)
    assert all(math.isnan(x) for x in (m.energy_kwh, m.co2_kg, m.wall_s))
    for e in ledger(df):
        assert e.making.label == NOT_RECORDED and math.isnan(e.making.energy_kwh)


def test_no_saving_never_breaks_even() -> None:
    # student 12, 13, 11 kWh/h against the teacher's 10, 12, 11: saved -2, -1, 0 -> median -1
    df = frame(student=[(0, 12.0, 6.0), (1, 13.0, 6.5), (2, 11.0, 5.5)])
    (e,) = [e for e in ledger(df) if not e.baseline]
    assert e.kwh_saved_per_hour == -1.0 and e.break_even_hours == INF
    t = ledger_table([e])
    assert t.column("Against the teacher", "Break-even speech")[0].text == "never"
    assert t.column("Against the teacher", "Saved per hour")[0].sub == "9 % more"  # -1 / 11


def test_teacher_row_says_it_is_the_baseline() -> None:
    (t_entry, _) = ledger(frame())
    t = ledger_table([t_entry])
    assert t.column("Against the teacher", "Break-even speech")[0].text == "baseline"
    assert t.column("Against the teacher", "Break-even speech")[0].sub == "no break-even: it is the reference"
    assert t.column("Making it", "Energy")[0].text == "500 kWh"  # its making cost is shown, charged to nobody


def test_no_teacher_on_the_device(caplog: pytest.LogCaptureFixture) -> None:
    df = pd.concat([frame(), pd.DataFrame([row("student", "distill-L4", 0, 1.0, 0.5, device="cuda", **MADE)])])
    with caplog.at_level(logging.WARNING):
        entries = ledger(df)
    assert not caplog.records  # a device without the teacher is expected, not a problem to warn about
    gpu = [e for e in entries if e.device == "cuda"]
    assert len(gpu) == 1 and gpu[0].savings is None and math.isnan(gpu[0].break_even_hours)
    assert ledger_table(gpu).column("Against the teacher", "Break-even speech")[0].text == "n/a"


def test_speech_hours_format() -> None:
    assert fmt_speech_hours(0.5) == "30 min"
    assert fmt_speech_hours(5.0) == "5 h"
    assert fmt_speech_hours(1234.4) == "1,234 h"
    assert fmt_speech_hours(2.5e7) == "25 million h"


def test_table4_carries_the_ledger() -> None:
    t = table_energy(frame())
    ours = {r[1].text: r for r in t.rows if r[0].text == "ours"}
    making, saved, be, net_ = (t.column(g, n) for g, n in t.columns[8:12])
    i = [r[1].text for r in t.rows].index("student")
    assert making[i].text == "30 kWh" and making[i].value == 30.0
    assert saved[i].value == 6.0 and be[i].value == 5.0 and be[i].text == "5 h"
    assert net_[i].value == pytest.approx(6.0 * 54e6 - 30.0)       # the default 54 million hours
    assert ours["teacher"][10].text == "baseline"
    paper = [r for r in t.rows if r[0].text == "paper"]
    assert all(c.source == "paper" and c.value is None for r in paper for c in r[8:12])
    assert any("Break-even speech = making kWh" in n for n in t.notes)


def test_summary_shows_the_ledger() -> None:
    df = frame(student_made=None)
    html = summary_html(df, all_savings(df, hours=1000.0), 1000.0)
    assert "Making cost, break-even and the net saving" in html
    assert "break-even: not recorded (making cost unknown)" in html   # the card
    df = frame()
    html = summary_html(df, all_savings(df, hours=1000.0), 1000.0)
    assert "break-even after 5 h of speech" in html
