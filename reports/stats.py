"""Selecting variants and summarising repeats: medians with their spread (min-max) and n.

Why min-max rather than IQR: runs have 3-5 repeats, too few for quartiles to mean much; the full range is the
honest statement of how much the machine drifted.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd

log = logging.getLogger(__name__)

# Time columns in order of preference for comparisons with the paper: it timed decoding + model + CTC decoding.
TIME_COLUMNS: tuple[str, ...] = ("e2e_s", "model_s", "wall_s")
TIME_LABELS = {
    "e2e_s": "end-to-end time (audio file decoding + input preparation + model + CTC decoding, as the paper timed)",
    "model_s": "model time (forward passes only)",
    "wall_s": "wall time of the timed pass",
}


@dataclass(frozen=True)
class Stat:
    """Median of the repeats with their range; n = number of finite values."""

    median: float
    lo: float
    hi: float
    n: int

    @property
    def ok(self) -> bool:
        return self.n > 0 and not math.isnan(self.median)

    @property
    def rel_spread(self) -> float:
        """(max - min) / median: how much the repeats disagreed."""
        return (self.hi - self.lo) / self.median if self.ok and self.median else float("nan")


MISSING = Stat(float("nan"), float("nan"), float("nan"), 0)


def stat(values: pd.Series | list[float]) -> Stat:
    s = pd.to_numeric(pd.Series(values, dtype="float64"), errors="coerce").dropna()
    if s.empty:
        return MISSING
    return Stat(float(s.median()), float(s.min()), float(s.max()), int(s.size))


def is_gpu(device: object) -> bool:
    return isinstance(device, str) and (device.startswith("cuda") or device.startswith("gpu"))


def device_kind(device: object) -> str:
    return "GPU" if is_gpu(device) else "CPU"


PREFERRED_SCENARIOS: tuple[str, ...] = ("batched", "paper-loop")


def scenarios(df: pd.DataFrame) -> list[str]:
    """The timing scenarios in the rows (bench's optional ``scenario`` column: batched, paper-loop, arch)."""
    if "scenario" not in df:
        return []
    return sorted({str(s) for s in df["scenario"].dropna().unique()})


def choose_scenario(df: pd.DataFrame, scenario: Optional[str] = None) -> Optional[str]:
    """The scenario the tables use: the one asked for, else 'batched', else the most common (not 'arch')."""
    found = [s for s in scenarios(df) if s != "arch"]
    if scenario is not None:
        if scenario not in found:
            from core.errors import FootprintError

            raise FootprintError(f"scenario {scenario!r} not in the results "
                                 f"(found: {', '.join(found) or 'no scenario column'})")
        return scenario
    if not found:
        return None
    for s in PREFERRED_SCENARIOS:
        if s in found:
            return s
    return df.loc[df["scenario"].isin(found), "scenario"].mode().iloc[0]


def select_scenario(df: pd.DataFrame, scenario: Optional[str] = None) -> pd.DataFrame:
    """Rows of one timing scenario (plus architecture-only rows), so medians never mix batched and batch-1 loops.

    Idempotent: once filtered, the auto choice is the scenario left."""
    chosen = choose_scenario(df, scenario)
    if chosen is None:
        return df
    keep = df["scenario"].isna() | (df["scenario"] == chosen) | (df["scenario"] == "arch")
    return df[keep]


def trained(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of models with real weights (not architecture-only timing rows)."""
    return df[df["weights"].fillna("trained") != "random"]


def random_weights(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["weights"].fillna("") == "random"]


def on(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows on 'CPU' or 'GPU' devices."""
    mask = df["device"].map(is_gpu).astype(bool)  # an empty object mask would select columns, not rows
    return df[mask] if kind == "GPU" else df[~mask]


def variant_for_recipe(df: pd.DataFrame, recipe: str) -> Optional[str]:
    """The variant that stands for a recipe (trained weights); when several share it, the one named like it."""
    names = sorted(trained(df).loc[lambda d: d["recipe"] == recipe, "variant"].dropna().unique())
    if not names:
        return None
    if len(names) > 1:
        chosen = recipe if recipe in names else names[0]
        log.info("recipe %s has %d variants (%s); using %s", recipe, len(names), ", ".join(names), chosen)
        return chosen
    return names[0]


def distilled_recipe(df: pd.DataFrame, preferred: str = "distill-L4") -> Optional[str]:
    """Table 1's distilled model: distill-L4 (the paper kept 4 layers), else our shallowest plain student."""
    recipes = set(trained(df)["recipe"].dropna())
    if preferred in recipes:
        return preferred
    plain = sorted((r for r in recipes if re.fullmatch(r"distill-L\d+", r)), key=lambda r: layers_of(r) or 0)
    return plain[0] if plain else None


def time_column(df: pd.DataFrame, preferred: str = "e2e_s") -> str:
    """The preferred time column, or the next one that has data."""
    for c in (preferred, *TIME_COLUMNS):
        if c in df and df[c].notna().any():
            return c
    return preferred


def kwh_per_hour(df: pd.DataFrame) -> pd.Series:
    """kWh per hour of audio per row: the stored column, else energy over the timed audio."""
    stored = df["kwh_per_audio_hour"]
    derived = df["energy_kwh"] / (df["audio_s"] / 3600.0)
    return stored.fillna(derived)


def co2_per_hour(df: pd.DataFrame) -> pd.Series:
    """kg CO2 per hour of audio per row: stored, else co2_kg over the audio, else energy x carbon intensity."""
    derived = df["co2_kg"] / (df["audio_s"] / 3600.0)
    from_energy = kwh_per_hour(df) * df["carbon_intensity_g_per_kwh"] / 1000.0
    return df["co2_kg_per_audio_hour"].fillna(derived).fillna(from_energy)


def layers_of(recipe: str) -> Optional[int]:
    m = re.search(r"-L(\d+)", recipe or "")
    return int(m.group(1)) if m else None


def summary(df: pd.DataFrame, time_col: str = "e2e_s", all_scenarios: bool = False) -> pd.DataFrame:
    """One row per (variant, device): medians, ranges and n of the main metrics (for plots, notebooks and
    ``footprint bench show``).  Rows of one timing scenario, unless ``all_scenarios`` (each paper-loop variant
    has its own name, so its medians never mix with the batched ones)."""
    if not all_scenarios:
        df = select_scenario(df)
    time_col = time_column(df, time_col)
    work = df.assign(_kwh_h=kwh_per_hour(df), _co2_h=co2_per_hour(df),
                     _power_w=df["energy_j"] / df["wall_s"])
    out = []
    for (variant, device), g in work.groupby(["variant", "device"], sort=True, dropna=False):
        t, e, c = stat(g[time_col]), stat(g["_kwh_h"]), stat(g["_co2_h"])
        first = g.iloc[0]
        out.append({
            "variant": variant, "recipe": first["recipe"], "weights": first["weights"], "device": device,
            "device_kind": device_kind(device), "n": len(g),
            "time_s": t.median, "time_lo": t.lo, "time_hi": t.hi, "time_col": time_col,
            "batch_size": stat(g["batch_size"]).median, "n_utts": stat(g["n_utts"]).median,
            "audio_s": stat(g["audio_s"]).median, "model_s": stat(g["model_s"]).median, "rtfx": stat(g["rtfx"]).median,
            "wer": stat(g["wer"]).median, "cer": stat(g["cer"]).median,
            "params": stat(g["params"]).median, "size_mb": stat(g["size_mb"]).median,
            "size_on_disk_mb": stat(g["size_on_disk_mb"]).median, "sparsity": stat(g["sparsity"]).median,
            "conv_layers": stat(g["conv_layers"]).median, "transformer_layers": stat(g["transformer_layers"]).median,
            "kwh_per_audio_hour": e.median, "kwh_per_audio_hour_lo": e.lo, "kwh_per_audio_hour_hi": e.hi,
            "co2_kg_per_audio_hour": c.median, "energy_kwh": stat(g["energy_kwh"]).median,
            "co2_kg": stat(g["co2_kg"]).median, "power_w": stat(g["_power_w"]).median,
            "energy_method": _joined(g["energy_method"]), "energy_measured": _measured(g["energy_measured"]),
            # measured once per variant x device (runs from before it have no such column)
            "variant_peak_mb": stat(g["variant_peak_mb"]).median if "variant_peak_mb" in g else float("nan"),
        })
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


SUMMARY_COLUMNS = ["variant", "recipe", "weights", "device", "device_kind", "n", "time_s", "time_lo", "time_hi",
                   "time_col", "batch_size", "n_utts", "audio_s", "model_s", "rtfx", "wer", "cer", "params", "size_mb",
                   "size_on_disk_mb", "sparsity", "conv_layers", "transformer_layers", "kwh_per_audio_hour",
                   "kwh_per_audio_hour_lo", "kwh_per_audio_hour_hi", "co2_kg_per_audio_hour", "energy_kwh", "co2_kg",
                   "power_w", "energy_method", "energy_measured", "variant_peak_mb"]


def _joined(s: pd.Series) -> str:
    return ", ".join(sorted({str(v) for v in s.dropna().unique()})) or "unknown"


def _measured(s: pd.Series) -> Optional[bool]:
    vals = {bool(v) for v in s.dropna().unique()}
    return vals.pop() if len(vals) == 1 else None


def fmt_num(x: float, kind: str) -> str:
    """A number as the tables print it (no unit)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    formatter: dict[str, Callable[[float], str]] = {
        "params": lambda v: f"{v / 1e6:.3g}",
        "size": lambda v: f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}",
        "time": _fmt_time,
        "pct": lambda v: f"{v:.2f}",
        "kg": lambda v: f"{v:.3g}",
        "kwh": lambda v: f"{v:.3g}",
        "ratio": lambda v: f"{v:.2f}",
        "points": lambda v: f"{v:+.2f}",
        "int": lambda v: f"{v:.0f}",
        "w": lambda v: f"{v:.0f}" if abs(v) >= 10 else f"{v:.2g}",
        "wh": lambda v: f"{v:.3g}",
        "g": lambda v: f"{v:.3g}",
    }
    return formatter[kind](float(x))


UNITS = {"params": " M", "size": " MB", "time": " s", "pct": " %", "kg": " kg", "kwh": " kWh", "ratio": "x",
         "points": " pt", "int": "", "w": " W",
         "wh": " Wh", "g": " g"}


def fmt(x: float, kind: str) -> str:
    s = fmt_num(x, kind)
    return s if s == "n/a" else s + UNITS[kind]


def _fmt_time(v: float) -> str:
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


def recipe_rank(recipe: str, layers: float = float("nan")) -> tuple[int, float, str]:
    """Sort key: the original first, then students deepest first, then other compressions, then timing-only rows."""
    r = recipe or ""
    depth = -(layers if layers == layers else 0.0)
    if r == "baseline":
        return (0, depth, r)
    if re.fullmatch(r"distill-L\d+", r):
        return (1, depth, r)
    if r.startswith("arch-"):
        return (4, depth, r)
    return (2 if "+" not in r else 3, depth, r)


def ordered_variants(df: pd.DataFrame) -> list[str]:
    """Variants in report order (see recipe_rank)."""
    firsts = df.groupby("variant", sort=False).agg(recipe=("recipe", "first"), layers=("transformer_layers", "max"))
    keyed = sorted(firsts.itertuples(), key=lambda r: (*recipe_rank(str(r.recipe), float(r.layers)), str(r.Index)))
    return [str(r.Index) for r in keyed]
