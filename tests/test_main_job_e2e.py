"""``footprint run`` end to end on a tiny teacher and an 8-utterance synthetic corpus: every variant benchmarked,
the warm-up kept out of the rows, the report written and its path printed.  The machine's optional speed-ups
(native bf16, a C++ compiler for the compiled chains) are switched off here so the variant list is the same on
every machine and nothing is compiled: tests/test_main_job_models.py covers how that list follows them."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import save_tiny_model, shared_tiny_corpus


def test_footprint_run_end_to_end(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import dataclasses
    import functools

    import compress.methods.quantize as quantize
    from bench import runner
    from compress.methods import registry
    from compress.variants import TEACHER_ENV
    from core.results import ResultsStore, load_results, read_meta
    from footprint.cli import main

    monkeypatch.setattr(quantize, "cpu_has_native_bf16", lambda: False)
    for name, method in list(registry._METHODS.items()):
        if name.startswith(("compile", "int8-inductor")):
            monkeypatch.setitem(registry._METHODS, name, dataclasses.replace(method, available=lambda: False))
    # variant memory in this process: a spawned child per variant costs seconds of imports (test_runner.py
    # covers the child)
    monkeypatch.setattr(runner, "RunConfig", functools.partial(runner.RunConfig, variant_memory="inprocess"))
    teacher = save_tiny_model(tmp_path / "teacher", layers=2)
    monkeypatch.setenv(TEACHER_ENV, str(teacher))  # the job points recipes at --model; restored after the test
    corpus = shared_tiny_corpus(tmp_path_factory)
    out = tmp_path / "run"
    argv = ["run", "--model", str(teacher), "--data", str(corpus), "--out", str(out), "--device", "cpu",
            "--limit", "4", "--repeats", "2", "--no-arch", "--carbon-intensity", "400", "--idle-baseline-s", "0",
            "--threads", "1"]
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    report = out / "report.html"
    assert printed and Path(printed[-1]) == report and report.stat().st_size > 10_000  # the path, last
    assert "INFO footprint.run: step 1/4" in (out / "run.log").read_text()  # every record, the console's too

    df = load_results(out)
    variants = ["teacher", "int8-dynamic", "prune-sensitivity"]  # the paper's recipes, built from --model
    assert sorted(df["variant"].unique()) == sorted(variants)
    # each variant: two timed repeats warm and two on lengths never seen, nothing else (the warm-up is no row)
    for v in variants:
        for scenario in ("batched", "unseen"):
            rows = df[(df["variant"] == v) & (df["scenario"] == scenario)]
            assert sorted(rows["repeat"]) == [0, 1], (v, scenario)
    warm, unseen = df[df["scenario"] == "batched"], df[df["scenario"] == "unseen"]
    assert len(df) == 4 * len(variants) and (warm["n_utts"] == 4).all() and df["wer"].notna().all()
    assert (unseen["n_utts"] == 1).all()  # half of the 4 held out, one per repeat
    assert (df["model_s"] > 0).all() and df["energy_j"].notna().all()
    store = ResultsStore(out)
    warm = store.passes("warmup")
    store.close()
    # one warm-up per variant, before the unseen repeats, on the rest, stored apart; none before the warm ones: the
    # accuracy pass just ran their whole batch plan
    assert sorted(w["variant"] for w in warm) == sorted(variants) and all("|unseen|" in w["key"] for w in warm)
    assert read_meta(out)["config"]["warmup"] >= 1
    html = report.read_text()
    for v in variants:
        assert v in html
