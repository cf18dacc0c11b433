"""Read a results run (bench -> reports contract, ARCHITECTURE.md "Results schema") and distillation logs.

A RUN_DIR holds ``results.sqlite`` (append-only, the source of truth) and/or ``results.csv`` (its export) and
``meta.json`` (the run's configuration).  Problems the user can fix raise a one-line
:class:`core.errors.FootprintError` naming the file.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from core.errors import FootprintError
# The contract and its one reader, defined once in core (torch-free; pandas imported there lazily).
from core.results import (INT_COLUMNS, REAL_COLUMNS, REQUIRED_COLUMNS, SCHEMA_COLUMNS, STRING_COLUMNS,  # noqa: F401
                          parse_bool, read_table)
from core.train_log import TRAIN_LOG_COLUMNS  # shared with the trainers; stdlib-only

log = logging.getLogger(__name__)

NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c in SCHEMA_COLUMNS if c in REAL_COLUMNS | INT_COLUMNS)
KEY_COLUMNS: tuple[str, ...] = ("run_id", "variant", "device", "repeat")


@dataclass
class Run:
    """A loaded results run: the tidy rows, the run's configuration and where they came from."""

    run_dir: Path
    results: pd.DataFrame
    meta: dict[str, Any]
    source: Path                                   # the file the rows came from
    train_logs: list["TrainLog"] = field(default_factory=list)


@dataclass
class TrainLog:
    """One student's distillation log (``train_log.csv``) and what we could learn about how it was trained."""

    name: str
    path: Path
    frame: pd.DataFrame
    init: Optional[str] = None          # "alternate" | "last" | None (unknown)
    train_hours: Optional[float] = None  # size of the training set in hours of audio
    config: dict[str, Any] = field(default_factory=dict)
    recipe: Optional[str] = None         # from variant.json, when there is one

    @property
    def is_student(self) -> bool:
        """A distillation log (not, e.g., the teacher's own training log)."""
        if self.recipe is not None:
            return self.recipe.startswith(("distill", "maxpool"))
        return self.name != "teacher"

    @property
    def trained_for(self) -> tuple[float, float | None, int | None] | None:
        """(epochs, hours of audio per epoch, steps) from the log's last row; None without epochs."""
        f = self.frame.dropna(subset=["epoch"])
        if f.empty:
            return None
        last = f.iloc[-1]
        steps = int(last["step"]) if "step" in f and pd.notna(last["step"]) else None
        return round(float(last["epoch"]), 2), self.train_hours, steps

    @property
    def budget(self) -> str:
        """``trained_for`` in words: epochs of how many hours of audio, and steps."""
        if self.trained_for is None:
            return "budget unknown"
        epochs, hours, steps = self.trained_for
        return (f"{epochs:g} epochs of {f'{hours:.2f} h' if hours else '? h'}"
                + (f" ({steps} steps)" if steps is not None else ""))

    @property
    def per_epoch(self) -> pd.DataFrame:
        """One row per epoch with a dev WER (the last logged row of each epoch)."""
        f = self.frame.dropna(subset=["dev_wer"])
        return f.groupby("epoch", as_index=False).last().sort_values("epoch")


def _coerce(df: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Fill absent schema columns, fix dtypes, drop duplicate keys (a resumed run may re-append a row)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise FootprintError(f"{source}: not a results table: missing column(s) {', '.join(missing)}")
    absent = [c for c in SCHEMA_COLUMNS if c not in df.columns]
    if absent:
        log.warning("%s: %d schema column(s) absent, treated as empty: %s", source, len(absent), ", ".join(absent))
        for c in absent:
            df[c] = pd.NA
    for c in NUMERIC_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    for c in STRING_COLUMNS:
        df[c] = df[c].astype("string")
    df["energy_measured"] = df["energy_measured"].map(parse_bool).astype("boolean")
    if df.empty:
        raise FootprintError(f"{source}: results table has no rows")
    # bench's extra columns refine the row identity: several timing scenarios / passes per repeat.
    if "row_key" in df and df["row_key"].notna().all():
        keys = ["row_key"]
    else:
        keys = [k for k in (*KEY_COLUMNS, "scenario", "pass") if k in df and df[k].notna().any()]
    before = len(df)
    df = df.drop_duplicates(subset=keys, keep="last").reset_index(drop=True)
    if len(df) < before:
        log.warning("%s: dropped %d duplicate row(s) (same %s)", source, before - len(df), "/".join(keys))
    return df


SQLITE_MAGIC = b"SQLite format 3\x00"


def read_results_file(path: Path) -> pd.DataFrame:
    """The raw rows of one results file given by name: SQLite (by its header) or CSV; one line on a problem."""
    from core.results import _read_csv, _read_sqlite  # the one reader's parts, for a file not named results.*

    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise FootprintError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if head == SQLITE_MAGIC:
        return _read_sqlite(path)
    if path.suffix.lower() in (".sqlite", ".sqlite3", ".db"):
        raise FootprintError(f"{path}: not a SQLite database")
    if not head:
        raise FootprintError(f"{path}: empty file, not a results table")
    return _read_csv(path)


def read_meta(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "meta.json"
    if not path.exists():
        log.warning("%s: not found; the report will lack the run's configuration", path)
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FootprintError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise FootprintError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """The tidy results of RUN_DIR as a DataFrame (SQLite preferred: the CSV is only its export)."""
    return load_run(run_dir, with_logs=False).results


def load_run(run_dir: str | Path, with_logs: bool = True,
             extra_log_paths: Iterable[str | Path] = ()) -> Run:
    """Rows, meta.json and (optionally) the distillation logs of a run folder (or a results file's folder)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():  # a results file itself: read that file (whatever its name), meta.json beside it
        df, source = read_results_file(run_dir), run_dir
        run_dir = run_dir.parent
    elif not run_dir.exists():
        raise FootprintError(f"{run_dir}: no such results folder")
    else:
        df, source = read_table(run_dir)
    df = _coerce(df, source)
    meta = read_meta(run_dir)
    run = Run(run_dir=run_dir, results=df, meta=meta, source=source)
    if with_logs:
        run.train_logs = find_train_logs(run_dir, df, extra_log_paths)
    log.info("%s: %d rows, %d variant(s), device(s) %s", source, len(df), df["variant"].nunique(),
             ", ".join(sorted(df["device"].dropna().unique())))
    return run


def read_train_log(path: str | Path, name: Optional[str] = None) -> TrainLog:
    """One ``train_log.csv``; ``variant.json`` beside it (if any) says the init strategy and training data."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise FootprintError(f"{path}: no such training log") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FootprintError(f"{path}: unreadable training log: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("epoch", "dev_wer") if c not in frame.columns]
    if missing:
        raise FootprintError(f"{path}: not a training log: missing column(s) {', '.join(missing)}")
    for c in TRAIN_LOG_COLUMNS:
        if c not in frame.columns:
            frame[c] = float("nan")
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    config = _variant_config(path.parent / "variant.json")
    name = name or path.parent.name
    recipe = config.get("recipe") if isinstance(config.get("recipe"), str) else None
    return TrainLog(name=name, path=path, frame=frame, init=_init_strategy(config, name),
                    train_hours=_train_hours(config, frame), config=config, recipe=recipe)


def _variant_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FootprintError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        return {}
    # compress writes {"recipe", "stages": [{"name", "config"}], ...}; older or hand-made files {"config": {...}}.
    merged = {k: v for k, v in data.items() if k not in ("config", "stages")}
    stages = data.get("stages") if isinstance(data.get("stages"), list) else []
    for part in [*(s.get("config") for s in stages if isinstance(s, dict)), data.get("config")]:
        if isinstance(part, dict):
            merged.update(part)
    return merged


def _init_strategy(config: dict[str, Any], name: str) -> Optional[str]:
    for key in ("init", "init_strategy", "layer_init", "student_init"):
        if isinstance(config.get(key), str):
            return config[key].lower()
    # Fall back on the folder name, e.g. "distill-L4-last".
    for word in ("alternate", "last"):
        if re.search(rf"(^|[-_.]){word}($|[-_.])", name.lower()):
            return word
    return None


def _train_hours(config: dict[str, Any], frame: pd.DataFrame) -> Optional[float]:
    for key in ("train_hours", "data_hours", "audio_hours"):
        v = config.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    # audio_hours is cumulative in compress's logs (hours processed so far; epochs may be fractional): then the set
    # is hours / epochs.  A constant column is the set size itself.
    f = frame.dropna(subset=["audio_hours", "epoch"])
    f = f[f["epoch"] > 0]
    if f.empty:
        return None
    last = f.iloc[-1]
    if len(f) > 1 and f["audio_hours"].iloc[-1] > f["audio_hours"].iloc[0] * 1.01:
        return float(last["audio_hours"] / last["epoch"])
    return float(last["audio_hours"])


# The students folder compress uses (compress.methods.registry.STUDENTS_ENV; read here, never imported).
STUDENTS_ENV = "W2V_FOOTPRINT_STUDENTS"


def find_train_logs(run_dir: Path, results: Optional[pd.DataFrame] = None,
                    extra: Iterable[str | Path] = ()) -> list[TrainLog]:
    """Training logs: in RUN_DIR (up to 3 levels down); beside each row's model_path and in the folders next to it
    (the students folder also holds students that were trained but not benchmarked, e.g. the ``last``-init one of
    Figure 1); in $W2V_FOOTPRINT_STUDENTS; and at the paths given (a file, or a folder searched one level down)."""
    seen: dict[Path, None] = {}

    def scan(folder: Path, patterns: tuple[str, ...]) -> None:
        for pattern in patterns:
            for p in sorted(folder.glob(pattern)):
                if p.is_file():
                    seen[p.resolve()] = None

    scan(run_dir, ("train_log.csv", "*/train_log.csv", "*/*/train_log.csv", "*/*/*/train_log.csv"))
    if results is not None and "model_path" in results:
        for mp in results["model_path"].dropna().unique():
            for base in (Path(str(mp)).expanduser(), run_dir / str(mp)):
                if (base / "train_log.csv").is_file():
                    scan(base.parent, ("*/train_log.csv",))
                    break
    env = os.environ.get(STUDENTS_ENV)
    if env and Path(env).is_dir():
        scan(Path(env), ("*/train_log.csv",))
    for p in map(Path, extra):
        if p.is_dir():
            scan(p, ("train_log.csv", "*/train_log.csv"))
        else:
            seen[p.resolve()] = None  # a missing file is the user's to fix: read_train_log names it
    logs = [read_train_log(p) for p in seen]
    log.debug("training logs: %s", ", ".join(str(t.path) for t in logs) or "none")
    return logs
