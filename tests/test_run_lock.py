"""Two runs, one folder: the second ``footprint bench run`` given the same ``--out`` refuses at once in one line
naming the folder and the process that holds it; the first completes with all its rows.  A lock left by a killed
run blocks nothing (the kernel drops a flock with its process: tests/test_runner_resume.py resumes after kill -9)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import FootprintError
from core.results import ResultsStore, load_results
from core.run_lock import LOCK_NAME, RunLock
from helpers import save_tiny_model, shared_tiny_corpus

pytestmark = pytest.mark.slow  # started first under pytest-xdist (tests/conftest.py)

ROOT = Path(__file__).resolve().parent.parent
IN_USE = re.compile(r"^(?P<dir>.+): in use by another footprint process \(pid (?P<pid>\d+) on (?P<host>\S+) since "
                    r"(?P<since>\S+)\); wait for it or use another --out$")


def test_second_writer_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = ResultsStore(tmp_path)
    held = json.loads((tmp_path / LOCK_NAME).read_text())
    assert held["pid"] == os.getpid() and held["host"] == socket.gethostname() and held["command"]
    with pytest.raises(FootprintError) as err:
        ResultsStore(tmp_path)
    m = IN_USE.match(str(err.value))
    assert m and m["dir"] == str(tmp_path) and int(m["pid"]) == os.getpid() and m["since"] == held["since"]
    ResultsStore(tmp_path, readonly=True).close()  # readers are never locked out
    first.close()
    ResultsStore(tmp_path).close()  # free again


def test_a_stale_lock_file_blocks_nothing(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "gone", "since": "then", "command": "x"}))
    lock = RunLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock.held and (tmp_path / LOCK_NAME).read_text() == ""


def test_a_dropped_store_frees_the_folder(tmp_path: Path) -> None:
    import gc

    store = ResultsStore(tmp_path)
    with pytest.raises(FootprintError, match="in use by another footprint process"):
        RunLock(tmp_path).acquire()
    store.con.close()
    del store  # never closed: the lock goes with the open file
    gc.collect()
    RunLock(tmp_path).acquire().release()


def _holder(out: Path) -> int | None:
    try:
        return json.loads((out / LOCK_NAME).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def test_two_runs_one_folder(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    model = save_tiny_model(tmp_path / "tiny")
    data = shared_tiny_corpus(tmp_path_factory)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "footprint", "bench", "run", "--models", str(model), "--data", str(data),
           "--repeats", "2", "--out", str(out), "--energy", "none", "--no-progress", "--limit", "2",
           "--threads", "1", "--warmup", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the first waits after each row until the release file exists: it holds the folder until the second (a fresh
    # Python, torch imported on a busy machine) has been refused
    release = tmp_path / "release"
    first = subprocess.Popen(cmd, cwd=ROOT, env={**env, "FOOTPRINT_ROW_HOLD": str(release)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while _holder(out) != first.pid and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert first.poll() is None, first.communicate()[1][-2000:]
        second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second was refused"
        lines = second.stderr.splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr[-3000:]
        prefix = "footprint: error: "
        assert lines[0].startswith(prefix), lines
        m = IN_USE.match(lines[0][len(prefix):])
        assert m, lines[0]
        assert m["dir"] == str(out) and int(m["pid"]) == first.pid and m["host"] == socket.gethostname()
        release.touch()
        stdout, stderr = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr[-3000:]
    assert "2 row(s) written, 0 resumed" in stdout, stdout[-2000:]
    df = load_results(out)
    assert sorted(df["repeat"]) == [0, 1] and df["row_key"].is_unique and df["run_id"].nunique() == 1
    assert "INFO bench.accuracy: accuracy pass" in (out / "run.log").read_text()  # bench run keeps its records
    assert (out / "results.csv").read_text().count("\n") == 3
    assert (out / LOCK_NAME).read_text() == ""  # released when the first finished
