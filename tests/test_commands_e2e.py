"""``footprint bench ratios`` and ``footprint corpus synth`` as commands: what they print and what they write
(their libraries are tested in test_results.py and test_synth_corpus.py)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from footprint.cli import main

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results_small"


def test_bench_ratios_prints_and_writes_the_paired_ratios(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.ratios import compute, format_report

    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    capsys.readouterr()
    assert main(["bench", "ratios", str(run)]) == 0
    out = capsys.readouterr().out
    written = json.loads((run / "ratios.json").read_text())
    want = compute(run)
    assert out.strip().splitlines()[-1] == f"written to {run / 'ratios.json'}"
    assert format_report(want).strip() in out
    assert written == json.loads(json.dumps(want))  # the file holds what compute() gives
    assert any(r["kind"] == "vs-teacher" for r in written["ratios"])  # the fixture has a teacher and its variants


def test_corpus_synth_writes_a_librispeech_subset_and_prints_its_root(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    from core.data.librispeech import read_subset

    capsys.readouterr()
    assert main(["corpus", "synth", "--out", str(tmp_path / "c"), "--dev-utterances", "3", "--subsets", "dev-clean",
                 "--jobs", "1"]) == 0
    root = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert root.name == "LibriSpeech" and (root / "dev-clean").is_dir()
    m = read_subset(root / "dev-clean")
    assert len(m.utterances) == 3 and all(u.transcript for u in m.utterances)
    assert not (root / "train-clean").exists()  # only the subsets asked for
    # a second call finds the corpus made and prints the same root
    assert main(["corpus", "synth", "--out", str(tmp_path / "c"), "--dev-utterances", "3", "--subsets", "dev-clean",
                 "--jobs", "1"]) == 0
    assert Path(capsys.readouterr().out.strip().splitlines()[-1]) == root
