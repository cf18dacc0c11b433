"""The training logs' columns and their CSV writer (standard library only: ``reports`` reads these logs).

``train_log.csv`` beside a distilled student has :data:`TRAIN_LOG_COLUMNS` (one row per epoch); the teacher's
``train_log.csv`` has :data:`TEACHER_LOG_COLUMNS` (one row every ``log_every`` steps, dev scores on eval steps).
"""
from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRAIN_LOG_COLUMNS: tuple[str, ...] = ("epoch", "step", "train_loss", "kd_loss", "feature_penalty", "ctc_loss", "lr",
                                      "dev_wer", "dev_cer", "wall_s", "audio_hours")
TEACHER_LOG_COLUMNS: tuple[str, ...] = ("step", "epoch", "loss", "lr", "dev_wer", "dev_cer", "wall_s", "audio_hours")


class TrainLog:
    """Appends rows to a CSV log, writing the header when the file is new (a resumed run continues the file).

    ``enabled=False`` (a rank other than 0) makes every call a no-op.
    """

    def __init__(self, path: str | Path, columns: Sequence[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self.enabled = enabled
        if enabled and not self.path.exists():
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)

    def write(self, row: Mapping[str, Any]) -> None:
        """One row; missing columns are left empty, ``None`` is written as an empty field."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.path}: no column(s) {sorted(unknown)}")
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow(["" if row.get(c) is None else row[c] for c in self.columns])
