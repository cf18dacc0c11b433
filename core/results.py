"""The tidy results table (ARCHITECTURE.md "Results schema"): an append-only SQLite store plus its CSV export.

One row per (run_id, variant, device, repeat), committed the moment it is measured, so a kill loses at
most the row in progress.  Each row has a ``row_key`` (run config hash | variant | device | repeat | pass)
with a UNIQUE index: a resumed run asks :meth:`ResultsStore.done_keys` what to skip, and a row that is
somehow written twice is ignored, never duplicated.  Side measurements (accuracy passes, warm-ups, tracker
overhead, idle baselines) go to the ``passes`` table as JSON, so nothing measured is lost either.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

from core.errors import FootprintError
from core.run_lock import RunLock
from core.schema import ALL_COLUMNS, EXTRA_COLUMNS, SCHEMA_COLUMNS, SCHEMA_VERSION  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

# The columns come from core.schema.Row (the contract with reports/ first, then this implementation's extras);
# re-exported here, where the store and its readers use them.
REAL_COLUMNS = {
    "audio_s", "wall_s", "model_s", "decode_s", "e2e_s", "rtf", "rtfx", "wer", "cer", "size_mb", "size_on_disk_mb",
    "sparsity", "peak_rss_mb", "cuda_max_alloc_mb", "energy_j", "energy_kwh", "co2_kg", "carbon_intensity_g_per_kwh",
    "kwh_per_audio_hour", "co2_kg_per_audio_hour", "inputs_s", "text_s", "model_s_cuda_events", "rss_before_mb",
    "workload_fraction", "model_s_full_est", "energy_j_gross", "idle_w", "tracker_overhead_frac",
}
REAL_COLUMNS |= {"energy_j_net", "idle_baseline_s"}  # energy provenance
INT_COLUMNS = {"schema_version", "threads", "batch_size", "repeat", "n_utts", "n_skipped", "params", "conv_layers",
               "transformer_layers", "world_size", "accuracy_batch_size"}
BOOL_COLUMNS = {"energy_measured", "git_dirty"}
# memory and contention columns, kept apart from the sets above
REAL_COLUMNS |= {"variant_peak_mb", "others_cpu_s", "others_cpu_share", "cpu_freq_mhz"}
BOOL_COLUMNS |= {"contended"}
# one-time costs, lengths never seen, oneDNN's cache
REAL_COLUMNS |= {"compile_s", "load_s", "calibration_s", "export_s"}
INT_COLUMNS |= {"shapes_reused"}
# making cost (core/making.py)
REAL_COLUMNS |= {"making_wall_s", "making_energy_kwh", "making_co2_kg"}
BOOL_COLUMNS |= {"making_measured"}

DB_NAME, CSV_NAME, META_NAME = "results.sqlite", "results.csv", "meta.json"


def row_key(config_hash: str, variant: str, device: str, repeat: int, pass_: str = "perf") -> str:
    return f"{config_hash}|{variant}|{device}|{repeat}|{pass_}"


def _sql_type(col: str) -> str:
    return "REAL" if col in REAL_COLUMNS else "INTEGER" if col in INT_COLUMNS | BOOL_COLUMNS else "TEXT"


def _clean(v: Any) -> Any:
    """SQLite-storable: NaN -> NULL, numpy scalars -> Python, dict/list -> JSON."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True)
    return v


class ResultsStore:
    """RUN_DIR/results.sqlite: ``results`` (tidy rows) and ``passes`` (side measurements), append-only.

    Opened for writing, it holds RUN_DIR's lock (:mod:`core.run_lock`) until :meth:`close`."""

    def __init__(self, run_dir: str | Path, readonly: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self.lock: RunLock | None = None
        if readonly:
            if not self.path.exists():
                raise FootprintError(f"{self.path}: no results database")
            self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # one writer per folder: a second run given the same --out refuses here, before it writes anything
        self.lock = RunLock(self.run_dir).acquire()
        try:
            self.con = sqlite3.connect(self.path, timeout=30)
            self._create()
        except sqlite3.DatabaseError as exc:
            self.lock.release()
            raise FootprintError(f"{self.path}: not a usable SQLite database ({exc})") from None

    def _create(self) -> None:
        cols = ", ".join(f'"{c}" {_sql_type(c)}' for c in ALL_COLUMNS)
        with self.con:
            self.con.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
            have = {r[1] for r in self.con.execute('PRAGMA table_info("results")')}
            for c in ALL_COLUMNS:  # a store written by an older version gains new columns, keeps its rows
                if c not in have:
                    self.con.execute(f'ALTER TABLE results ADD COLUMN "{c}" {_sql_type(c)}')
            self.con.execute("CREATE UNIQUE INDEX IF NOT EXISTS results_row_key ON results(row_key)")
            self.con.execute("CREATE TABLE IF NOT EXISTS passes (key TEXT PRIMARY KEY, kind TEXT, variant TEXT, "
                             "device TEXT, payload TEXT, timestamp TEXT)")

    # -- rows ---------------------------------------------------------------------------------------
    def done_keys(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT row_key FROM results WHERE row_key IS NOT NULL")}

    def append(self, row: dict[str, Any]) -> bool:
        """Insert and commit one row; False if its key was already there (nothing is overwritten)."""
        unknown = set(row) - set(ALL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown result column(s): {', '.join(sorted(unknown))}")
        cols = [c for c in ALL_COLUMNS if c in row]
        sql = (f'INSERT OR IGNORE INTO results ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
               f'VALUES ({", ".join("?" for _ in cols)})')
        with self.con:
            cur = self.con.execute(sql, [_clean(row[c]) for c in cols])
        return cur.rowcount == 1

    # -- side measurements ---------------------------------------------------------------------------
    def put_pass(self, key: str, kind: str, variant: str, device: str, payload: dict[str, Any],
                 timestamp: str) -> None:
        with self.con:
            self.con.execute("INSERT OR REPLACE INTO passes VALUES (?, ?, ?, ?, ?, ?)",
                             (key, kind, variant, device, json.dumps(payload, default=_json_default), timestamp))

    def get_pass(self, key: str) -> dict[str, Any] | None:
        r = self.con.execute("SELECT payload FROM passes WHERE key = ?", (key,)).fetchone()
        return json.loads(r[0]) if r else None

    def passes(self, kind: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT key, kind, variant, device, payload, timestamp FROM passes"
        rows = self.con.execute(q + (" WHERE kind = ?" if kind else ""), (kind,) if kind else ()).fetchall()
        return [{**json.loads(p), "key": k, "kind": kd, "variant": v, "device": d, "timestamp": t}
                for k, kd, v, d, p, t in rows]

    # -- export --------------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT * FROM results ORDER BY rowid")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def export_csv(self, path: str | Path | None = None) -> Path:
        """Write the CSV export atomically (temp file + rename: a kill never leaves half a CSV)."""
        path = Path(path) if path else self.run_dir / CSV_NAME
        rows = self.rows()
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(ALL_COLUMNS), extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: _csv_value(k, v) for k, v in r.items()})
        os.replace(tmp, path)
        return path

    def close(self) -> None:
        self.con.close()
        if self.lock is not None:
            self.lock.release()


def _csv_value(col: str, v: Any) -> Any:
    if v is None:
        return ""
    if col in BOOL_COLUMNS:
        return str(bool(v))
    return v


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(o)
    return str(o)


# Without these nothing can be grouped or rendered.
REQUIRED_COLUMNS: tuple[str, ...] = ("variant", "recipe", "device", "repeat")
STRING_COLUMNS: tuple[str, ...] = tuple(c for c in SCHEMA_COLUMNS
                                        if c not in REAL_COLUMNS | INT_COLUMNS | BOOL_COLUMNS)


def parse_bool(v: Any) -> Any:
    """A stored boolean from SQLite (0/1), the CSV export ("True"/"False") or a hand-made table; pd.NA if unknown."""
    import pandas as pd

    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return pd.NA
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("true", "1", "yes", "measured"):
            return True
        if s in ("false", "0", "no", "estimated"):
            return False
        return pd.NA
    return bool(v)


def read_table(run_dir: str | Path) -> tuple["pd.DataFrame", Path]:  # noqa: F821
    """The raw rows of RUN_DIR (or of a results file's folder) and the file they came from.

    ``results.sqlite`` is preferred (the CSV is only its export); in a hand-made database the table named
    ``results`` wins, else the first one with the required columns.  Problems are one line naming the file.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    sqlite_path, csv_path = run_dir / DB_NAME, run_dir / CSV_NAME
    if sqlite_path.exists():
        return _read_sqlite(sqlite_path), sqlite_path
    if csv_path.exists():
        return _read_csv(csv_path), csv_path
    raise FootprintError(f"{run_dir}: neither {DB_NAME} nor {CSV_NAME} found")


def _read_sqlite(path: Path) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise FootprintError(f"{path}: cannot open SQLite database: {exc}") from None
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        chosen = "results" if "results" in tables else None
        if chosen is None:
            for t in tables:
                cols = {r[1] for r in con.execute(f'PRAGMA table_info("{t}")')}
                if set(REQUIRED_COLUMNS) <= cols:
                    chosen = t
                    break
        if chosen is None:
            raise FootprintError(f"{path}: no results table (tables: {', '.join(tables) or 'none'})")
        return pd.read_sql_query(f'SELECT * FROM "{chosen}"', con)
    except sqlite3.Error as exc:
        raise FootprintError(f"{path}: unreadable SQLite database: {exc}") from None
    finally:
        con.close()


def _read_csv(path: Path) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    try:
        return pd.read_csv(path, dtype={c: "string" for c in STRING_COLUMNS}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FootprintError(f"{path}: unreadable CSV: {str(exc).splitlines()[0]}") from None


def load_results(run_dir: str | Path) -> "pd.DataFrame":  # noqa: F821
    """RUN_DIR's rows as a DataFrame (SQLite preferred, CSV otherwise), every column present in schema order,
    dtypes fixed.  ``reports.load`` reads through :func:`read_table` too and adds its own checks."""
    import pandas as pd

    df, _ = read_table(run_dir)
    for c in ALL_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA
    for c in REAL_COLUMNS | (INT_COLUMNS - {"params"}):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["params"] = pd.to_numeric(df["params"], errors="coerce").astype("Int64")
    for c in BOOL_COLUMNS:
        df[c] = df[c].map(parse_bool).astype("boolean")
    return df[list(ALL_COLUMNS) + [c for c in df.columns if c not in ALL_COLUMNS]]


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / META_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise FootprintError(f"{path}: invalid JSON ({exc})") from None


def write_meta(run_dir: str | Path, meta: dict[str, Any]) -> None:
    path = Path(run_dir) / META_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=False, default=_json_default))
    os.replace(tmp, path)

