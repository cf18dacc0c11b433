"""Carbon intensity as an input (g CO2e/kWh or a country code), always with its source recorded.

Country figures come from CodeCarbon's offline table (``global_energy_mix.json``); no network.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from core.errors import FootprintError

# CodeCarbon's world average (carbon_intensity_per_source.json), used when nothing is given.
DEFAULT_WORLD_AVERAGE = 475.0


@dataclass(frozen=True)
class CarbonIntensity:
    g_per_kwh: float
    source: str
    country_iso3: str | None = None


def _codecarbon_json(name: str) -> tuple[dict, str]:
    try:
        import codecarbon
    except ImportError:
        return {}, ""
    path = resources.files("codecarbon") / "data" / "private_infra" / name
    try:
        return json.loads(path.read_text()), codecarbon.__version__
    except (OSError, json.JSONDecodeError):
        return {}, codecarbon.__version__


def _iso2_to_iso3(code: str) -> str | None:
    try:
        import csv

        path = resources.files("carbontracker") / "data" / "carbon-intensities.csv"
        with path.open() as f:
            for row in csv.DictReader(f):
                if row.get("alpha-2", "").upper() == code:
                    return row.get("Code") or None
    except (ImportError, OSError, ModuleNotFoundError):
        return None
    return None


def resolve_intensity(g_per_kwh: float | None = None, country: str | None = None) -> CarbonIntensity:
    """``g_per_kwh`` wins (source: user input); else a country's figure; else CodeCarbon's world average."""
    if g_per_kwh is not None:
        if g_per_kwh < 0:
            raise FootprintError(f"--carbon-intensity {g_per_kwh}: must be >= 0 g CO2e/kWh")
        return CarbonIntensity(float(g_per_kwh), "user input (--carbon-intensity)",
                               country.upper() if country and len(country) == 3 else None)
    if country:
        code = country.strip().upper()
        if len(code) == 2:
            code = _iso2_to_iso3(code) or code
        mix, version = _codecarbon_json("global_energy_mix.json")
        entry = mix.get(code)
        if not entry or entry.get("carbon_intensity") is None:
            raise FootprintError(f"--country {country}: no carbon-intensity figure for it in codecarbon's "
                                 "global_energy_mix.json (use an ISO 3166 alpha-3 code, or --carbon-intensity)")
        return CarbonIntensity(float(entry["carbon_intensity"]),
                               f"codecarbon {version} global_energy_mix.json: {entry.get('country_name', code)} "
                               f"{entry.get('year', '')}".strip(), code)
    per_source, version = _codecarbon_json("carbon_intensity_per_source.json")
    value = float(per_source.get("world_average", DEFAULT_WORLD_AVERAGE))
    source = f"CodeCarbon {version} world average (no country or intensity given)".replace("  ", " ")
    return CarbonIntensity(value, source)
