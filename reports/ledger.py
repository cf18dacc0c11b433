"""The ledger: what making each variant cost, against what it saves per hour of speech.

    break-even speech = making kWh / kWh saved per hour of speech       (hours of speech)
    net at N hours    = kWh saved at N hours - making kWh                (and the same on CO2)

The saving per hour and at scale are reports.savings' (the teacher's kWh per audio hour minus the variant's, on
the same device); this module only adds the making cost, read from the rows' ``making_*`` columns (copied from
each model folder's making record, core/making.py).  A variant's making cost is what made it from the teacher
(distillation, pruning and recovery, calibration...), not the teacher's own training: the teacher is needed either
way, it is the baseline, so its row has no break-even.  An unknown making cost (a model imported from elsewhere,
a run from before the columns) reads "not recorded", never zero: a zero would claim the variant was free.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from core.results import parse_bool
from reports import deploy
from reports.render import Cell, Table
from reports.savings import DEFAULT_HOURS, Savings, compute_savings, fmt_energy, fmt_hours, fmt_mass
from reports.stats import MISSING, Stat, is_gpu, ordered_variants, select_scenario, trained, variant_for_recipe

log = logging.getLogger(__name__)

NOT_RECORDED = "not recorded"
BASELINE = "baseline"
SAVINGS_COLUMNS = ("run_id", "repeat", "carbon_intensity_g_per_kwh", "carbon_intensity_source", "energy_method",
                   "energy_measured")
MAKING_COLUMNS = ("making_wall_s", "making_energy_kwh", "making_co2_kg", "making_label", "making_measured")
NOTE = ("Making cost: the energy (and CO\u2082) spent making the variant from the teacher, from its making record "
        "('not recorded' where there is none, never zero); the teacher's own training is the baseline's and is not "
        "charged to the variants. Break-even speech = making kWh / kWh saved per hour of speech against the "
        "teacher on the same device ('never' without a saving); net = the saving at scale minus the making cost.")


@dataclass(frozen=True)
class MakingCost:
    """One variant's making cost; NaN energy = not recorded."""

    energy_kwh: float = float("nan")
    co2_kg: float = float("nan")
    wall_s: float = float("nan")
    label: str = NOT_RECORDED          # how the energy is known ("measured (rapl)", "estimated (...)")
    measured: Optional[bool] = None

    @property
    def recorded(self) -> bool:
        return not math.isnan(self.energy_kwh)


UNKNOWN = MakingCost()


def _one(rows: pd.DataFrame, col: str, numeric: bool) -> object:
    """The variant's value of a making column (every row carries the same record); None when absent."""
    if col not in rows:
        return None
    s = pd.to_numeric(rows[col], errors="coerce") if numeric else rows[col]
    vals = list(dict.fromkeys(v for v in s.dropna() if not (isinstance(v, str) and not v.strip())))
    if len(vals) > 1:
        log.warning("%s differs between rows of one variant (%s); using the first", col,
                    ", ".join(map(str, vals)))
    return vals[0] if vals else None


def making_cost(rows: pd.DataFrame) -> MakingCost:
    """The making cost of one variant from its rows; UNKNOWN for runs without the making columns."""
    nums = {c: _one(rows, f"making_{c}", True) for c in ("energy_kwh", "co2_kg", "wall_s")}
    measured = parse_bool(_one(rows, "making_measured", False))
    label = _one(rows, "making_label", False)
    return MakingCost(*(float("nan") if v is None else float(v) for v in nums.values()),
                      label=str(label) if label is not None else NOT_RECORDED,
                      measured=None if measured is pd.NA else bool(measured))


def break_even_speech_hours(making_kwh: float, saved_kwh_per_hour: float) -> float:
    """Hours of speech after which the energy saved repays the making energy: inf ("never") when the variant saves
    nothing per hour, NaN when either figure is unknown."""
    if saved_kwh_per_hour is None or math.isnan(saved_kwh_per_hour):
        return float("nan")
    if saved_kwh_per_hour <= 0:
        return float("inf")
    if making_kwh is None or math.isnan(making_kwh):
        return float("nan")
    return making_kwh / saved_kwh_per_hour


def net(saved: Stat, cost: float) -> Stat:
    """The saving at scale minus a one-time cost (the range shifts with it); MISSING when either is unknown."""
    if not saved.ok or cost is None or math.isnan(cost):
        return MISSING
    return Stat(saved.median - cost, saved.lo - cost, saved.hi - cost, saved.n)


@dataclass(frozen=True)
class LedgerEntry:
    """One variant on one device: its making cost against its saving per hour over the teacher's."""

    variant: str
    device: str
    making: MakingCost
    savings: Optional[Savings]     # None for the teacher, or where the teacher has no rows on this device
    baseline: bool
    target_hours: float

    @property
    def kwh_saved_per_hour(self) -> float:
        return self.savings.kwh_saved_per_hour.median if self.savings else float("nan")

    @property
    def break_even_hours(self) -> float:
        return float("nan") if self.baseline else break_even_speech_hours(self.making.energy_kwh,
                                                                           self.kwh_saved_per_hour)

    @property
    def net_kwh(self) -> Stat:
        return net(self.savings.kwh_saved_total, self.making.energy_kwh) if self.savings else MISSING

    @property
    def net_co2_kg(self) -> Stat:
        return net(self.savings.co2_kg_saved_total, self.making.co2_kg) if self.savings else MISSING


def ledger(df: pd.DataFrame, hours: float = DEFAULT_HOURS) -> list[LedgerEntry]:
    """Every trained variant on every device it ran on, in report order, against the teacher (recipe baseline)."""
    # a loaded run has every schema column; a hand-made frame gets the ones reports.savings reads as unknown
    df = select_scenario(df).assign(**{c: pd.NA for c in SAVINGS_COLUMNS if c not in df})
    data = trained(df)
    base = variant_for_recipe(df, "baseline")
    base_devices = set(data.loc[data["variant"] == base, "device"].dropna()) if base else set()
    out: list[LedgerEntry] = []
    for variant in ordered_variants(data) if len(data) else []:
        rows = data[data["variant"] == variant]
        making = making_cost(rows)
        for dev in sorted(set(rows["device"].dropna()), key=lambda d: (is_gpu(d), d)):
            s = None
            if variant != base and dev in base_devices:
                found = compute_savings(df, base, variant, device=dev, hours=hours)
                s = found[0] if found else None
            out.append(LedgerEntry(variant, str(dev), making, s, variant == base, hours))
    return out


# --- cells and tables ------------------------------------------------------------------------------------------
def fmt_speech_hours(h: float) -> str:
    """Hours of speech as they read best: minutes under an hour, whole hours, then millions."""
    if h < 1:
        return f"{h * 60:.2g} min"
    if h < 1e6:
        return f"{h:,.0f} h" if h >= 10 else f"{h:.2g} h"
    return fmt_hours(float(f"{h:.3g}"))


def making_cell(m: MakingCost) -> Cell:
    if not m.recorded:
        return Cell(NOT_RECORDED, "" if m.label == NOT_RECORDED else m.label, "ours")
    co2 = f"{fmt_mass(m.co2_kg)} CO\u2082; " if not math.isnan(m.co2_kg) else ""
    return Cell(fmt_energy(m.energy_kwh), co2 + m.label, "ours", m.energy_kwh)


def saved_cell(e: LedgerEntry) -> Cell:
    if e.baseline:
        return Cell(BASELINE, "the others are measured against it", "ours")
    s = e.savings
    if s is None or not s.kwh_saved_per_hour.ok:
        return Cell("n/a", "no teacher rows on this device" if s is None else "not measured", "ours")
    f = s.fraction_saved * 100
    return Cell(fmt_energy(s.kwh_saved_per_hour.median), f"{f:.0f} % less" if f >= 0 else f"{-f:.0f} % more", "ours",
                s.kwh_saved_per_hour.median)


def break_even_cell(e: LedgerEntry) -> Cell:
    h = e.break_even_hours
    if e.baseline:
        return Cell(BASELINE, "no break-even: it is the reference", "ours")
    if h == float("inf"):
        return Cell("never", "it saves nothing per hour", "ours", h)
    if not e.making.recorded and e.savings is not None and e.savings.kwh_saved_per_hour.ok:
        return Cell(NOT_RECORDED, "making cost unknown", "ours")
    if math.isnan(h):
        return Cell("n/a", "no saving measured", "ours")
    return Cell(fmt_speech_hours(h), "of speech", "ours", h)


def net_cell(e: LedgerEntry) -> Cell:
    if e.baseline:
        return Cell(BASELINE, "", "ours")
    if e.savings is None or not e.savings.kwh_saved_total.ok:
        return Cell("n/a", "no saving measured", "ours")
    if not e.making.recorded:
        return Cell(NOT_RECORDED, f"gross {fmt_energy(e.savings.kwh_saved_total.median)}", "ours")
    n, c = e.net_kwh, e.net_co2_kg
    return Cell(fmt_energy(n.median), f"{fmt_mass(c.median)} CO\u2082" if c.ok else "CO\u2082 not recorded", "ours",
                n.median)


def columns(hours: float = DEFAULT_HOURS) -> list[tuple[str, str]]:
    return [("Making it", "Energy"), ("Against the teacher", "Saved per hour"),
            ("Against the teacher", "Break-even speech"), (f"At {fmt_hours(hours)}", "Net saved")]


def cells(e: Optional[LedgerEntry]) -> list[Cell]:
    """Table 4's four ledger cells for one variant x device (n/a where it has no entry)."""
    if e is None:
        return [Cell("n/a", "", "ours") for _ in columns()]
    return [making_cell(e.making), saved_cell(e), break_even_cell(e), net_cell(e)]


def blank(text: str) -> list[Cell]:
    """The ledger cells of a row that has none (the paper's rows)."""
    return [Cell(text, "", "paper") for _ in columns()]


def by_key(entries: list[LedgerEntry]) -> dict[tuple[str, str], LedgerEntry]:
    return {(e.variant, e.device): e for e in entries}


def ledger_table(entries: list[LedgerEntry], hours: float = DEFAULT_HOURS, scenario: Optional[str] = None) -> Table:
    """The savings summary's ledger: every variant's making cost, saving per hour, break-even and net saving."""
    cols = [("", "Model"), ("", "Device"), ("Making it", "Energy"), ("Making it", "Wall clock"),
            ("Against the teacher", "Saved per hour"), ("Against the teacher", "Break-even speech"),
            (f"At {fmt_hours(hours)}", "Gross saved"), (f"At {fmt_hours(hours)}", "Net saved")]
    t = Table("ledger", "Making cost and break-even",
              f"What making each variant cost, the hours of speech it must transcribe to pay that back, and the "
              f"saving at {fmt_hours(hours)} net of it; savings from the {deploy.word(scenario)} timed repeats. "
              + NOTE, cols)
    for e in entries:
        m = e.making
        wall = Cell(f"{m.wall_s / 3600:.2g} h", "", "ours", m.wall_s) if not math.isnan(m.wall_s) else \
            Cell(NOT_RECORDED, "", "ours")
        gross = e.savings.kwh_saved_total if e.savings else MISSING
        gross_cell = (Cell(BASELINE, "", "ours") if e.baseline else
                      Cell(fmt_energy(gross.median), "", "ours", gross.median) if gross.ok else Cell("n/a", "", "ours"))
        kind = "GPU" if is_gpu(e.device) else "CPU"
        t.add([Cell(e.variant), Cell(f"{kind} ({e.device})"), making_cell(m), wall, saved_cell(e),
               break_even_cell(e), gross_cell, net_cell(e)])
    return t


def ledger_frame(entries: list[LedgerEntry]) -> pd.DataFrame:
    """One row per entry, numbers only (NaN: not recorded or not measured; inf: never), for notebooks and tests."""
    return pd.DataFrame([{
        "variant": e.variant, "device": e.device, "baseline": e.baseline, "hours": e.target_hours,
        "making_kwh": e.making.energy_kwh, "making_co2_kg": e.making.co2_kg, "making_wall_s": e.making.wall_s,
        "making_label": e.making.label, "making_measured": e.making.measured,
        "kwh_saved_per_hour": e.kwh_saved_per_hour, "break_even_hours": e.break_even_hours,
        "net_kwh": e.net_kwh.median, "net_co2_kg": e.net_co2_kg.median} for e in entries])
