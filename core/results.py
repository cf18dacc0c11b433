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

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# The contract with reports/ (same order as ARCHITECTURE.md; tests check reports.load agrees).
SCHEMA_COLUMNS: tuple[str, ...] = (
    "schema_version", "run_id", "variant", "recipe", "model_path", "weights",
    "device", "device_name", "threads", "batch_size", "repeat", "n_utts", "n_skipped", "audio_s", "wall_s", "model_s",
    "decode_s", "e2e_s", "rtf", "rtfx", "wer", "cer", "params", "size_mb", "size_on_disk_mb", "sparsity",
    "conv_layers", "transformer_layers", "peak_rss_mb", "cuda_max_alloc_mb", "energy_j", "energy_kwh",
    "energy_method", "energy_measured", "energy_source_detail", "co2_kg", "carbon_intensity_g_per_kwh",
    "carbon_intensity_source", "kwh_per_audio_hour", "co2_kg_per_audio_hour", "manifest_hash", "dataset",
    "git_commit", "torch_version", "transformers_version", "python_version", "cpu_model", "gpu_name", "hostname",
    "timestamp",
)
# Added by this implementation (after the contract's columns; reports ignores what it does not know).
EXTRA_COLUMNS: tuple[str, ...] = (
    "scenario",            # batched | paper-loop | arch (random weights, timing only)
    "pass",                # perf (one row per timed repeat)
    "row_key",             # config_hash|variant|device|repeat|pass: the resume key
    "config_hash",
    "inputs_s",            # waveform normalisation, padding and host->device copy
    "text_s",              # CTC argmax + greedy decoding to text
    "model_s_cuda_events",  # GPU time by CUDA events (model_s is wall time after synchronisation)
    "rss_before_mb",       # process RSS when the repeat began (all loaded variants count)
    "world_size",          # ranks (torchrun); 1 otherwise
    "rank_wall_s",         # JSON list: wall time of each rank
    "workload_fraction",   # arch-only: share of the dev-clean-shaped workload timed
    "model_s_full_est",    # arch-only: model_s extrapolated to the full workload (labelled estimate)
    "energy_j_gross",      # before the idle baseline is subtracted
    "idle_w",              # idle baseline power (W), when measured
    "energy_components_j",  # JSON: joules per component (cpu, ram, gpu0, package-0, pue_overhead, ...)
    "tracker_overhead_frac",  # (wall with tracker - without) / without, from this run's overhead check
    "accuracy_batch_size",
    "git_dirty",
    "compute_dtype",       # float32 | float16 | bfloat16 | bfloat16-autocast (fp32 weights, bf16 kernels)
)
ALL_COLUMNS: tuple[str, ...] = SCHEMA_COLUMNS + EXTRA_COLUMNS
REAL_COLUMNS = {
    "audio_s", "wall_s", "model_s", "decode_s", "e2e_s", "rtf", "rtfx", "wer", "cer", "size_mb", "size_on_disk_mb",
    "sparsity", "peak_rss_mb", "cuda_max_alloc_mb", "energy_j", "energy_kwh", "co2_kg", "carbon_intensity_g_per_kwh",
    "kwh_per_audio_hour", "co2_kg_per_audio_hour", "inputs_s", "text_s", "model_s_cuda_events", "rss_before_mb",
    "workload_fraction", "model_s_full_est", "energy_j_gross", "idle_w", "tracker_overhead_frac",
}
INT_COLUMNS = {"schema_version", "threads", "batch_size", "repeat", "n_utts", "n_skipped", "params", "conv_layers",
               "transformer_layers", "world_size", "accuracy_batch_size"}
BOOL_COLUMNS = {"energy_measured", "git_dirty"}

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
    """RUN_DIR/results.sqlite: ``results`` (tidy rows) and ``passes`` (side measurements), append-only."""

    def __init__(self, run_dir: str | Path, readonly: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        if readonly:
            if not self.path.exists():
                raise FootprintError(f"{self.path}: no results database")
            self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.con = sqlite3.connect(self.path, timeout=30)
            self._create()
        except sqlite3.DatabaseError as exc:
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


def load_results(run_dir: str | Path) -> "pd.DataFrame":  # noqa: F821
    """RUN_DIR's rows as a DataFrame (SQLite preferred, CSV otherwise), schema columns first, dtypes fixed."""
    import pandas as pd

    run_dir = Path(run_dir)
    if (run_dir / DB_NAME).exists():
        store = ResultsStore(run_dir, readonly=True)
        try:
            df = pd.DataFrame(store.rows())
        finally:
            store.close()
    elif (run_dir / CSV_NAME).exists():
        df = pd.read_csv(run_dir / CSV_NAME)
    else:
        raise FootprintError(f"{run_dir}: neither {DB_NAME} nor {CSV_NAME} found")
    for c in ALL_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA
    for c in REAL_COLUMNS | (INT_COLUMNS - {"params"}):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["params"] = pd.to_numeric(df["params"], errors="coerce").astype("Int64")
    for c in BOOL_COLUMNS:
        df[c] = df[c].map(lambda v: pd.NA if v is None or (isinstance(v, float) and math.isnan(v))
                          else str(v).strip().lower() in ("1", "true")).astype("boolean")
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

