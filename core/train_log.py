"""The training logs' columns and their CSV writer (standard library only: ``reports`` reads these logs).

``train_log.csv`` beside a distilled student has :data:`TRAIN_LOG_COLUMNS` (one row per epoch); the teacher's
``train_log.csv`` has :data:`TEACHER_LOG_COLUMNS` (one row every ``log_every`` steps, dev scores on eval steps).
Both end with the making cost so far in this run, ``energy_kwh`` and ``co2_kg`` (cumulative like ``wall_s``), read
from the meter a metered command installs with :func:`energy_probe` (the phase's label, measured or estimated and
by what, is in the model's making record); empty when the command runs unmetered.  A log begun before these
columns existed is continued with its own header's columns.
"""
from __future__ import annotations

import csv
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ENERGY_COLUMNS: tuple[str, ...] = ("energy_kwh", "co2_kg")
TRAIN_LOG_COLUMNS: tuple[str, ...] = ("epoch", "step", "train_loss", "kd_loss", "feature_penalty", "ctc_loss", "lr",
                                      "dev_wer", "dev_cer", "wall_s", "audio_hours") + ENERGY_COLUMNS
TEACHER_LOG_COLUMNS: tuple[str, ...] = ("step", "epoch", "loss", "lr", "dev_wer", "dev_cer", "wall_s",
                                        "audio_hours") + ENERGY_COLUMNS

# () -> (kWh, kg CO2) of this run so far; set while a metered command runs (footprint/making.py)
EnergyProbe = Callable[[], tuple[float | None, float | None]]
_probe: EnergyProbe | None = None


@contextlib.contextmanager
def energy_probe(probe: EnergyProbe) -> Iterator[None]:
    """While the body runs, every row a :class:`TrainLog` writes carries ``probe()``'s energy and CO2."""
    global _probe
    previous, _probe = _probe, probe
    try:
        yield
    finally:
        _probe = previous


class TrainLog:
    """Appends rows to a CSV log, writing the header when the file is new (a resumed run continues the file).

    ``enabled=False`` (a rank other than 0) makes every call a no-op.
    """

    def __init__(self, path: str | Path, columns: Sequence[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.known = tuple(columns)
        self.columns = self.known  # what each row holds: the header's columns when continuing an older log
        self.enabled = enabled
        if not enabled:
            return
        header = None
        if self.path.exists():
            with open(self.path, newline="") as fh:
                header = next(csv.reader(fh), None)
        if header:
            self.columns = tuple(header)
        else:
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)

    def write(self, row: Mapping[str, Any]) -> None:
        """One row; missing columns are left empty, ``None`` is written as an empty field."""
        unknown = set(row) - set(self.known)
        if unknown:
            raise KeyError(f"{self.path}: no column(s) {sorted(unknown)}")
        if not self.enabled:
            return
        if _probe is not None and "energy_kwh" in self.columns:
            kwh, co2 = _probe()
            row = {**row, "energy_kwh": kwh, "co2_kg": co2}
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow(["" if row.get(c) is None else row[c] for c in self.columns])
