"""``pytest bench --benchmark-json`` on a tiny model and corpus: the JSON carries the runner's accuracy, size and
energy in extra_info, the machine-info hook's fields, readable ids and groups; CUDA cases skip with a reason."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import save_tiny_model, shared_tiny_corpus

ROOT = Path(__file__).resolve().parent.parent


def test_pytest_bench_json(tmp_path, tmp_path_factory) -> None:  # noqa: ANN001
    model = save_tiny_model(tmp_path / "tiny")
    data = shared_tiny_corpus(tmp_path_factory)
    out = tmp_path / "out.json"
    # the child is a pytest of its own: an xdist worker's variables would tell pytest-benchmark it is a worker
    # (benchmarks then run without writing the JSON)
    parent = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env = {**parent, "PYTHONPATH": str(ROOT), "FOOTPRINT_BENCH_MODELS": str(model),
           "FOOTPRINT_BENCH_DEVICES": "cpu,cuda", "FOOTPRINT_BENCH_DATA": str(data), "FOOTPRINT_BENCH_LIMIT": "4",
           "FOOTPRINT_BENCH_ROUNDS": "2", "FOOTPRINT_BENCH_ENERGY": "codecarbon",
           "FOOTPRINT_BENCH_RUN_DIR": str(tmp_path / "run")}
    done = subprocess.run([sys.executable, "-m", "pytest", "bench", "-q", "-rs", "-p", "no:cacheprovider",
                           "--benchmark-json", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=150)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    import torch

    if not torch.cuda.is_available():
        assert "SKIPPED" in done.stdout and "no CUDA GPU visible" in done.stdout
        assert "1 passed, 1 skipped" in done.stdout
    report = json.loads(out.read_text())
    mi = report["machine_info"]
    for k in ("torch", "transformers", "gpu", "threads", "git_commit"):
        assert k in mi, k
    assert mi["torch"].startswith("2.") and mi["threads"] >= 1 and len(mi["git_commit"]) == 40
    (bench,) = [b for b in report["benchmarks"] if b["name"] == "test_transcribe[tiny-cpu]"]
    assert bench["group"] == "transcribe-cpu" and bench["stats"]["rounds"] == 2
    extra = bench["extra_info"]
    for k in ("wer", "cer", "size_mb", "params", "sparsity", "energy_kwh", "energy_method", "energy_measured",
              "variant_peak_mb"):
        assert k in extra, k
    assert extra["params"] > 10_000 and extra["wer"] is not None and extra["energy_method"] == "codecarbon"
    assert extra["energy_kwh"] > 0 and extra["n_utts"] == 4
    # read from the runner's results, not computed in the timed call
    from core.results import load_results

    rows = load_results(tmp_path / "run")
    assert extra["wer"] == rows["wer"].iloc[0] and extra["row_keys"] == list(rows["row_key"])


def test_default_models_are_table1(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """Unpinned, the face times the paper's Table 1 rows that exist on each device."""
    from bench.conftest import TABLE1_MODELS, bench_cases, bench_models

    monkeypatch.delenv("FOOTPRINT_BENCH_MODELS", raising=False)
    monkeypatch.delenv("W2V_FOOTPRINT_STUDENTS", raising=False)
    monkeypatch.setenv("FOOTPRINT_BENCH_DEVICES", "cpu,cuda")
    table1 = ["embedded", "int8-dynamic", "prune-sensitivity", "distill-L4", "maxpool-conv4"]
    assert list(TABLE1_MODELS) == table1
    assert bench_models() == table1  # both students are shipped
    assert [(c.spec, c.device) for c in bench_cases()][:3] == [("embedded", "cpu"), ("embedded", "cuda"),
                                                                 ("int8-dynamic", "cpu")]
    assert len(bench_cases()) == 10
    monkeypatch.setenv("W2V_FOOTPRINT_STUDENTS", str(tmp_path))  # no students there: only the rows that exist
    assert bench_models() == ["embedded", "int8-dynamic", "prune-sensitivity"]
    monkeypatch.setenv("FOOTPRINT_BENCH_MODELS", "embedded, int8-dynamic")  # pinning still works
    assert bench_models() == ["embedded", "int8-dynamic"]


def test_extra_info_peak_and_measured(tmp_path) -> None:  # noqa: ANN001
    """extra_info carries energy_measured and variant_peak_mb from the rows; None when the column is absent."""
    import pandas as pd

    from bench.conftest import BenchSession, Case

    case = Case("int8-dynamic", "cpu")
    row = {"variant": case.variant, "device": "cpu", "wer": 0.1, "cer": 0.05, "size_mb": 3.0, "params": 1000,
           "sparsity": 0.0, "energy_kwh": 1e-6, "energy_method": "rapl", "energy_measured": True, "rtfx": 20.0,
           "n_utts": 4, "audio_s": 12.0, "row_key": "k"}
    rows = pd.DataFrame([{**row, "variant_peak_mb": 120.0}, {**row, "variant_peak_mb": 140.0, "row_key": "k2"}])
    extra = BenchSession(tmp_path, rows, {}).extra_info(case)
    assert extra["variant_peak_mb"] == 130.0 and extra["energy_measured"] is True
    old = pd.DataFrame([{**row, "energy_measured": pd.NA}]).astype({"energy_measured": "boolean"})
    extra = BenchSession(tmp_path, old, {}).extra_info(case)
    assert extra["variant_peak_mb"] is None and extra["energy_measured"] is None
