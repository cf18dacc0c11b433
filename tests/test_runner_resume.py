"""Kill -9 in the middle of a run, rerun the same command: finished rows are kept, none duplicated, the run
completes.  Runs the real console entry point (python -m bench bench run) in a subprocess."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.results import load_results
from helpers import save_tiny_model, shared_tiny_corpus

pytestmark = pytest.mark.slow  # started first under pytest-xdist (tests/conftest.py)

ROOT = Path(__file__).resolve().parent.parent


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkill_then_resume(tmp_path, tmp_path_factory) -> None:  # noqa: ANN001
    model = save_tiny_model(tmp_path / "tiny")
    data = shared_tiny_corpus(tmp_path_factory)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bench", "bench", "run", "--models", str(model), "--data", str(data),
           "--repeats", "5", "--out", str(out), "--energy", "none", "--no-progress", "--limit", "2",
           "--threads", "1", "--warmup", "0"]
    env = {**os.environ, "FOOTPRINT_ROW_PAUSE_S": "0.7", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while _rows(out / "results.sqlite") < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _rows(out / "results.sqlite")
    assert 2 <= killed_at < 5
    before = load_results(out)

    env.pop("FOOTPRINT_ROW_PAUSE_S")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{5 - killed_at} row(s) written, {killed_at} resumed" in done.stdout
    assert "variant" in done.stdout and "rtfx" in done.stdout  # the final table
    after = load_results(out)
    assert sorted(after["repeat"]) == [0, 1, 2, 3, 4]
    assert after["row_key"].is_unique and after["run_id"].nunique() == 1
    # the rows finished before the kill are untouched
    kept = after.set_index("row_key").loc[before["row_key"], "timestamp"]
    assert list(kept) == list(before["timestamp"])
    assert (out / "results.csv").read_text().count("\n") == 6
