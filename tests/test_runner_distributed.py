"""torchrun with 2 CPU processes (gloo): utterances sharded over ranks, one table gathered on rank 0."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.results import load_results, read_meta
from helpers import save_tiny_model, shared_tiny_corpus

ROOT = Path(__file__).resolve().parent.parent


def test_torchrun_two_cpu_ranks(tmp_path, tmp_path_factory) -> None:  # noqa: ANN001
    model = save_tiny_model(tmp_path / "tiny")
    data = shared_tiny_corpus(tmp_path_factory)
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"method": "rapl", "measured": True, "detail": "test trace",
                                 "samples": [[float(t), {"package-0": 10.0 * t}] for t in range(0, 601, 10)]}))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "bench", "bench", "run", "--models", str(model), "--data", str(data), "--repeats", "2",
           "--out", str(out), "--energy", f"replay:{trace}", "--threads", "1", "--no-progress", "--warmup", "0",
           "--overhead-pairs", "0", "--limit", "6", "--scenarios", "batched"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # Own process group: on a timeout the ranks are killed with torchrun, never left behind.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError("torchrun timed out:\n" + output[-3000:]) from None
    assert proc.returncode == 0, output[-3000:]
    df = load_results(out)
    assert len(df) == 2 and sorted(df["repeat"]) == [0, 1]  # one table, not one per rank
    assert (df["world_size"] == 2).all() and (df["n_utts"] == 6).all()
    walls = [json.loads(w) for w in df["rank_wall_s"]]
    assert all(len(w) == 2 for w in walls)
    assert df["wall_s"].tolist() == [max(w) for w in walls]  # the slowest rank
    # energy: two process-scope replays of 10 W, summed over the ranks
    # each rank's 10 W over its own window: the sum of the ranks' times, not the slowest's twice or once
    assert df["energy_j"].tolist() == pytest.approx([10.0 * sum(w) for w in walls], rel=0.1)
    assert df["wer"].notna().all()
    meta = read_meta(out)
    assert meta["world_size"] == 2
    hyps = (out / "hyps" / "tiny__cpu.tsv").read_text().splitlines()
    assert len(hyps) == 7  # every utterance, gathered from both ranks
