"""What it cost to make a model: the record of each phase that made it (training, distillation, pruning and
recovery, calibration, compilation, export), and their total.

A model folder keeps its record in ``variant.json`` under ``"making"``; a folder without ``variant.json`` (the
shipped teacher, a model imported from elsewhere) keeps it in ``making.json`` with the same content.  A model with
no record has an unknown making cost: readers say "not recorded", never zero.

Record layout (JSON)::

    {"phases": [Phase, ...]}       # in the order they ran; continued training appends a phase

Each phase says how its energy is known (``energy_method`` names the meter or the estimate, ``energy_measured`` is
true only when every component was read from a hardware counter), so a total made of measured and estimated phases
is labelled as such.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import FootprintError

RECORD_KEY = "making"
VARIANT_FILE = "variant.json"
MAKING_FILE = "making.json"
NOT_RECORDED = "not recorded"
# energy_method of a phase whose energy is wall time x a stated power (a record made after the fact from a log)
ESTIMATED_FROM_LOG = "estimated from logged time"
NOT_METERED = "energy not metered"  # how the label names a phase with a wall time but no energy


@dataclass(frozen=True)
class Phase:
    """One phase of making a model: a command or step, where it ran, and what it cost."""

    phase: str                      # e.g. "teacher:h100", "distill", "prune-structured", "recovery", "compile"
    wall_s: float
    device: str                     # "cpu", "cuda", ...
    device_name: str = ""           # CPU or GPU model
    started: str = ""               # ISO 8601
    cpu_s: float | None = None      # process CPU seconds, all threads (None where not recorded)
    energy_kwh: float | None = None
    co2_kg: float | None = None
    energy_method: str = ""         # the meter's name ("rapl", "codecarbon", ...) or "estimated from logged time"
    energy_measured: bool = False   # every component read from a hardware counter
    energy_source_detail: str = ""  # how the energy was obtained, in words
    carbon_intensity_g_per_kwh: float | None = None
    carbon_intensity_source: str = ""
    command: str = ""               # what ran, for a rerun

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "making record") -> Phase:
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("phase", "wall_s", "device") if k not in d]
        if missing:
            raise FootprintError(f"{where}: a phase lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Making:
    """All phases that made a model, and their sums."""

    phases: tuple[Phase, ...]

    @property
    def wall_s(self) -> float:
        return sum(p.wall_s for p in self.phases)

    @property
    def energy_kwh(self) -> float:
        """NaN when any phase's energy is unknown: a partial sum would understate the cost."""
        return _sum_or_nan(p.energy_kwh for p in self.phases)

    @property
    def co2_kg(self) -> float:
        return _sum_or_nan(p.co2_kg for p in self.phases)

    @property
    def measured(self) -> bool:
        return bool(self.phases) and all(p.energy_measured for p in self.phases)

    @property
    def label(self) -> str:
        """How the total energy is known, in words: measured by which counters, estimated from what, or mixed.
        A phase with no energy figure (no meter could run) is named as such: the total is then unknown (NaN)."""
        if not self.phases:
            return NOT_RECORDED
        methods = sorted({(p.energy_method or "unknown") if p.energy_kwh is not None else NOT_METERED
                          for p in self.phases})
        if all(p.energy_kwh is None for p in self.phases):
            return f"{NOT_METERED} (wall time only)"
        kind = "measured" if self.measured else ("estimated" if not any(p.energy_measured for p in self.phases)
                                                 else "partly measured")
        return f"{kind} ({', '.join(methods)})"

    def with_phase(self, phase: Phase) -> Making:
        return Making(self.phases + (phase,))

    def as_dict(self) -> dict[str, Any]:
        return {"phases": [asdict(p) for p in self.phases],
                "total": {"wall_s": self.wall_s, "energy_kwh": _none_if_nan(self.energy_kwh),
                          "co2_kg": _none_if_nan(self.co2_kg), "energy_measured": self.measured,
                          "label": self.label}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "making record") -> Making:
        if not isinstance(d, dict) or not isinstance(d.get("phases"), list):
            raise FootprintError(f"{where}: expected {{\"phases\": [...]}}")
        return cls(tuple(Phase.from_dict(p, where) for p in d["phases"]))


def _sum_or_nan(values: Any) -> float:
    vals = list(values)
    if not vals or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
        return float("nan")
    return float(sum(vals))


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


def _record_file(folder: Path) -> Path:
    return folder / VARIANT_FILE if (folder / VARIANT_FILE).exists() else folder / MAKING_FILE


def read_making(folder: str | Path) -> Making | None:
    """The making record of a model folder, or None when it has none (its cost is "not recorded")."""
    path = _record_file(Path(folder))
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FootprintError(f"{path}: unreadable ({e})") from None
    if path.name == VARIANT_FILE:
        data = data.get(RECORD_KEY)
        if data is None:  # a variant.json written over a run's making.json (e.g. after an interrupted run)
            beside = Path(folder) / MAKING_FILE
            return read_making_file(beside) if beside.exists() else None
    return Making.from_dict(data, str(path))


def read_making_file(path: Path) -> Making:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FootprintError(f"{path}: unreadable ({e})") from None
    return Making.from_dict(data, str(path))


def write_making(folder: str | Path, making: Making) -> Path:
    """Replace a model folder's record with ``making`` (``variant.json``'s ``"making"`` if there is one, else
    ``making.json``); a ``making.json`` left beside a ``variant.json`` is removed (one record per folder: the
    caller read it first).  Returns the file written."""
    folder = Path(folder)
    path = _record_file(folder)
    if path.name == VARIANT_FILE:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise FootprintError(f"{path}: unreadable ({e})") from None
        data[RECORD_KEY] = making.as_dict()
    else:
        data = making.as_dict()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)  # atomic: a crash never leaves half a record
    stale = folder / MAKING_FILE
    if path.name == VARIANT_FILE and stale.exists():
        stale.unlink()
    return path


def add_phase(folder: str | Path, phase: Phase) -> Making:
    """Append one phase to a model folder's record (``variant.json`` if there is one, else ``making.json``)."""
    updated = (read_making(folder) or Making(())).with_phase(phase)
    write_making(folder, updated)
    return updated
