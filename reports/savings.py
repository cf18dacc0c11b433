"""Energy and CO2 saved per hour of speech by switching between two variants, scaled to N hours.

    saved per hour  = kWh per audio hour (from) - kWh per audio hour (to)
    saved at scale  = saved per hour x N hours                 (N = 54 million by default, the paper's figure)
    CO2             = the same on co2_kg_per_audio_hour (energy x the rows' carbon intensity)

The spread comes from the repeats: when both variants have the same repeats of the same run (the runner
interleaves them, so drift hits both alike) the difference is taken repeat by repeat and we give its
min / median / max; otherwise the extremes are the worst and best pairings (min(from) - max(to), max(from) - min(to)).

The paper's own extrapolation (section 7) is reproduced beside ours: 0.0019 kg saved on 5.4 h scaled to 54e6 h is
about 19 t by its own arithmetic, while the paper states about 21 t.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from core.errors import FootprintError
from reports import paper
from reports.stats import (MISSING, Stat, co2_per_hour, device_kind, distilled_recipe, is_gpu, kwh_per_hour,
                           select_scenario, stat, trained, variant_for_recipe)

log = logging.getLogger(__name__)

DEFAULT_HOURS = 54e6


def scaled(s: Stat, k: float) -> Stat:
    if not s.ok:
        return s
    lo, hi = sorted((s.lo * k, s.hi * k))
    return Stat(s.median * k, lo, hi, s.n)


@dataclass(frozen=True)
class Savings:
    """What switching ``from_variant`` -> ``to_variant`` on one device saves, per audio hour and at scale."""

    from_variant: str
    to_variant: str
    device: str
    target_hours: float
    kwh_per_hour_from: Stat
    kwh_per_hour_to: Stat
    kwh_saved_per_hour: Stat
    co2_kg_saved_per_hour: Stat
    carbon_intensity_g_per_kwh: Optional[float]
    carbon_intensity_source: str
    energy_method: str
    measured: Optional[bool]          # True: every row measured; False: every row estimated; None: mixed/unknown
    paired: bool                      # spread from repeat-by-repeat differences

    @property
    def device_kind(self) -> str:
        return device_kind(self.device)

    @property
    def kwh_saved_total(self) -> Stat:
        return scaled(self.kwh_saved_per_hour, self.target_hours)

    @property
    def co2_kg_saved_total(self) -> Stat:
        return scaled(self.co2_kg_saved_per_hour, self.target_hours)

    @property
    def fraction_saved(self) -> float:
        """Share of the original's energy per hour that the switch saves."""
        f, t = self.kwh_per_hour_from.median, self.kwh_per_hour_to.median
        return (f - t) / f if f and not math.isnan(f) else float("nan")

    @property
    def formula(self) -> str:
        f, t, h = self.kwh_per_hour_from.median, self.kwh_per_hour_to.median, self.target_hours
        ci = (f" x {self.carbon_intensity_g_per_kwh:g} g/kWh" if self.carbon_intensity_g_per_kwh is not None else "")
        return (f"({f:.4g} - {t:.4g}) kWh/h x {fmt_hours(h)} = {fmt_energy(self.kwh_saved_total.median)}; "
                f"CO\u2082: {fmt_energy(self.kwh_saved_total.median)}{ci} = {fmt_mass(self.co2_kg_saved_total.median)}")


@dataclass(frozen=True)
class PaperSavings:
    """The paper's section 7 extrapolation, recomputed, beside what it states."""

    co2_saved_kg: float
    test_hours: float
    target_hours: float
    computed_kg: float            # co2_saved_kg / test_hours x target_hours
    stated_kg: Optional[float]    # about 21 t, only meaningful at the paper's 54 million hours
    energy_saved_kwh: float
    computed_kwh: float

    @property
    def formula(self) -> str:
        stated = (f"; the paper states about {fmt_mass(self.stated_kg)}" if self.stated_kg is not None else "")
        return (f"{self.co2_saved_kg} kg / {self.test_hours} h x {fmt_hours(self.target_hours)} = "
                f"{fmt_mass(self.computed_kg)}{stated}")


def paper_savings(target_hours: float = DEFAULT_HOURS) -> PaperSavings:
    e = paper.EXTRAPOLATION
    return PaperSavings(
        co2_saved_kg=e.co2_saved_kg, test_hours=e.test_hours, target_hours=target_hours,
        computed_kg=e.co2_saved_kg / e.test_hours * target_hours,
        stated_kg=e.stated_t * 1000.0 if math.isclose(target_hours, e.target_hours) else None,
        energy_saved_kwh=e.energy_saved_kwh, computed_kwh=e.energy_saved_kwh / e.test_hours * target_hours)


def resolve_variant(df: pd.DataFrame, name: str) -> str:
    """A variant name, or a recipe standing for one."""
    if name in set(df["variant"].dropna()):
        return name
    v = variant_for_recipe(df, name)
    if v is None:
        known = ", ".join(sorted(trained(df)["variant"].dropna().unique()))
        raise FootprintError(f"{name}: no such variant or recipe in the results (known: {known})")
    return v


def _diff(a: pd.DataFrame, b: pd.DataFrame, col: str) -> tuple[Stat, bool]:
    """Per-repeat differences a - b when the repeats pair up, else median difference with worst/best range."""
    keys = ["run_id", "repeat"]
    if a[keys].notna().all(axis=None) and b[keys].notna().all(axis=None):
        m = a[keys + [col]].merge(b[keys + [col]], on=keys, suffixes=("_a", "_b")).dropna()
        if len(m) and len(m) == len(a) == len(b):
            return stat(m[f"{col}_a"] - m[f"{col}_b"]), True
    sa, sb = stat(a[col]), stat(b[col])
    if not (sa.ok and sb.ok):
        return MISSING, False
    return Stat(sa.median - sb.median, sa.lo - sb.hi, sa.hi - sb.lo, min(sa.n, sb.n)), False


def _single(values: pd.Series) -> Optional[float]:
    vals = sorted(set(pd.to_numeric(values, errors="coerce").dropna()))
    if len(vals) > 1:
        log.warning("carbon intensity differs between rows (%s); using the median", ", ".join(f"{v:g}" for v in vals))
    return float(pd.Series(vals).median()) if vals else None


def compute_savings(df: pd.DataFrame, from_variant: str, to_variant: str, device: Optional[str] = None,
                    hours: float = DEFAULT_HOURS) -> list[Savings]:
    """Savings on each device that has both variants (or on ``device`` only)."""
    df = select_scenario(df)
    a_name, b_name = resolve_variant(df, from_variant), resolve_variant(df, to_variant)
    work = df.assign(_kwh_h=kwh_per_hour(df), _co2_h=co2_per_hour(df))
    out: list[Savings] = []
    devices = sorted(set(work.loc[work["variant"] == a_name, "device"].dropna())
                     & set(work.loc[work["variant"] == b_name, "device"].dropna()), key=lambda d: (is_gpu(d), d))
    if device is not None:
        devices = [d for d in devices if d == device]
    for dev in devices:
        a = work[(work["variant"] == a_name) & (work["device"] == dev)]
        b = work[(work["variant"] == b_name) & (work["device"] == dev)]
        kwh, paired = _diff(a, b, "_kwh_h")
        co2, _ = _diff(a, b, "_co2_h")
        both = pd.concat([a, b])
        measured_vals = {bool(x) for x in both["energy_measured"].dropna()}
        sources = sorted(both["carbon_intensity_source"].dropna().unique())
        out.append(Savings(
            from_variant=a_name, to_variant=b_name, device=str(dev), target_hours=hours,
            kwh_per_hour_from=stat(a["_kwh_h"]), kwh_per_hour_to=stat(b["_kwh_h"]),
            kwh_saved_per_hour=kwh, co2_kg_saved_per_hour=co2,
            carbon_intensity_g_per_kwh=_single(both["carbon_intensity_g_per_kwh"]),
            carbon_intensity_source="; ".join(sources) or "not recorded",
            energy_method=", ".join(sorted(both["energy_method"].dropna().unique())) or "unknown",
            measured=measured_vals.pop() if len(measured_vals) == 1 else None, paired=paired))
    if not out:
        log.warning("no device has both %s and %s", a_name, b_name)
    return out


def default_pairs(df: pd.DataFrame) -> list[tuple[str, str]]:
    """original -> distilled (the paper's extrapolation), -> int8, -> distilled + int8: those present."""
    base = variant_for_recipe(df, "baseline")
    if base is None:
        return []
    targets = [distilled_recipe(df), "int8-dynamic"]
    targets += sorted(r for r in trained(df)["recipe"].dropna().unique() if "+" in r and r.startswith("distill"))
    pairs = []
    for r in targets:
        v = variant_for_recipe(df, r) if r else None
        if v is not None and v != base and (base, v) not in pairs:
            pairs.append((base, v))
    return pairs


def all_savings(df: pd.DataFrame, hours: float = DEFAULT_HOURS, scenario: Optional[str] = None) -> list[Savings]:
    df = select_scenario(df, scenario)
    return [s for a, b in default_pairs(df) for s in compute_savings(df, a, b, hours=hours)]


def fmt_hours(h: float) -> str:
    """54e6 -> '54 million h'."""
    if abs(h) >= 1e6:
        return f"{h / 1e6:g} million h"
    return f"{h:g} h"


def fmt_energy(kwh: float) -> str:
    """kWh in the unit that reads best: Wh, kWh, MWh, GWh."""
    if kwh is None or math.isnan(kwh):
        return "n/a"
    a = abs(kwh)
    for limit, div, unit in ((1e6, 1e6, "GWh"), (1e3, 1e3, "MWh"), (1.0, 1.0, "kWh")):
        if a >= limit:
            return f"{kwh / div:.3g} {unit}"
    return f"{kwh * 1000:.3g} Wh"


def fmt_mass(kg: float) -> str:
    """kg of CO2 in g, kg or t (tonnes)."""
    if kg is None or math.isnan(kg):
        return "n/a"
    a = abs(kg)
    if a >= 1000:
        return f"{kg / 1000:.3g} t"
    if a >= 1:
        return f"{kg:.3g} kg"
    return f"{kg * 1000:.3g} g"


def savings_frame(items: list[Savings]) -> pd.DataFrame:
    """One row per Savings, numbers only (for notebooks and tests)."""
    return pd.DataFrame([{
        "from": s.from_variant, "to": s.to_variant, "device": s.device, "hours": s.target_hours,
        "kwh_per_hour_from": s.kwh_per_hour_from.median, "kwh_per_hour_to": s.kwh_per_hour_to.median,
        "kwh_saved_per_hour": s.kwh_saved_per_hour.median, "kwh_saved_per_hour_min": s.kwh_saved_per_hour.lo,
        "kwh_saved_per_hour_max": s.kwh_saved_per_hour.hi, "co2_kg_saved_per_hour": s.co2_kg_saved_per_hour.median,
        "kwh_saved_total": s.kwh_saved_total.median, "co2_kg_saved_total": s.co2_kg_saved_total.median,
        "co2_kg_saved_total_min": s.co2_kg_saved_total.lo, "co2_kg_saved_total_max": s.co2_kg_saved_total.hi,
        "fraction_saved": s.fraction_saved, "n": s.kwh_saved_per_hour.n, "paired": s.paired,
        "carbon_intensity_g_per_kwh": s.carbon_intensity_g_per_kwh,
        "carbon_intensity_source": s.carbon_intensity_source, "energy_method": s.energy_method,
        "measured": s.measured} for s in items])
