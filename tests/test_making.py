"""What making a model cost (core/making.py): phases append and total; a distill run records a metered phase and a
continued run adds one; the runner's rows carry making_*; the backfill is the logs' wall time x the stated power;
a folder without a record is "not recorded" and NaN, never 0."""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from test_methods_support import tiny_corpus, tiny_model, tiny_teacher_dir  # noqa: F401 - fixtures

from core.making import (ESTIMATED_FROM_LOG, MAKING_FILE, NOT_RECORDED, Making, Phase, add_phase, read_making,
                         write_making)

INTENSITY = SimpleNamespace(g_per_kwh=400.0, source="test", country_iso3=None)


def _trace(path: Path, watts: float = 50.0) -> Path:
    """A constant ``watts`` counter replayed in real time (bench/energy/replay.py)."""
    path.write_text(json.dumps({"method": "rapl", "measured": True, "detail": "test trace",
                                "samples": [[float(t), {"package-0": watts * t}] for t in range(0, 3601, 60)]}))
    return path


def _ph(name: str, wall: float, kwh: float | None, measured: bool = False, method: str = "codecarbon") -> Phase:
    return Phase(phase=name, wall_s=wall, device="cpu", energy_kwh=kwh, co2_kg=None if kwh is None else kwh * 0.4,
                 energy_method=method, energy_measured=measured)


# ----------------------------------------------------------------------------------------------- the record
def test_phases_append_and_total(tmp_path: Path) -> None:
    d = tmp_path / "teacher"
    d.mkdir()
    assert read_making(d) is None
    add_phase(d, _ph("one", 10.0, 0.002, measured=True, method="rapl"))
    mk = add_phase(d, _ph("two", 5.5, 0.001))
    assert (d / MAKING_FILE).exists()
    back = read_making(d)
    assert back == mk and [p.phase for p in back.phases] == ["one", "two"]
    assert back.wall_s == 15.5 and back.energy_kwh == pytest.approx(0.003) and back.co2_kg == pytest.approx(0.0012)
    assert not back.measured and back.label == "partly measured (codecarbon, rapl)"
    saved = json.loads((d / MAKING_FILE).read_text())["total"]
    assert saved["wall_s"] == 15.5 and saved["energy_kwh"] == pytest.approx(0.003)


def test_variant_json_keeps_its_record_under_making(tmp_path: Path) -> None:
    d = tmp_path / "student"
    d.mkdir()
    (d / "variant.json").write_text(json.dumps({"recipe": "distill-L2"}))
    (d / MAKING_FILE).write_text(json.dumps(Making((_ph("interrupted", 3.0, 0.001),)).as_dict()))
    # a variant.json written over an interrupted run's making.json: the making.json still counts
    assert read_making(d).wall_s == 3.0
    write_making(d, read_making(d).with_phase(_ph("resumed", 4.0, 0.002)))
    data = json.loads((d / "variant.json").read_text())
    assert data["recipe"] == "distill-L2" and len(data["making"]["phases"]) == 2
    assert not (d / MAKING_FILE).exists()  # one record per folder
    assert read_making(d).wall_s == 7.0


def test_unknown_energy_is_nan_never_zero() -> None:
    mk = Making((_ph("a", 1.0, 0.5), _ph("b", 2.0, None, method="none")))
    assert mk.wall_s == 3.0 and math.isnan(mk.energy_kwh) and math.isnan(mk.co2_kg)
    assert "energy not metered" in mk.label
    assert Making(()).label == NOT_RECORDED and math.isnan(Making(()).energy_kwh)
    assert Making((_ph("a", 1.0, None, method="none"),)).label == "energy not metered (wall time only)"


def test_a_folder_without_record_is_not_recorded(tmp_path: Path) -> None:
    from bench.making import making_fields, variant_making

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "variant.json").write_text("{}")
    v = SimpleNamespace(path=str(bare), record={})
    run = SimpleNamespace(making={("bare", "cpu"): variant_making(v, "bare", "cpu", None, 1.0, INTENSITY)})
    for key in (("bare", "cpu"), ("never-loaded", "cpu")):
        f = making_fields(run, *key)
        assert f["making_label"] == NOT_RECORDED and f["making_measured"] is None
        assert all(math.isnan(f[k]) for k in ("making_wall_s", "making_energy_kwh", "making_co2_kg"))


# ----------------------------------------------------------------------------------------------- commands
def _distill(teacher: Path, corpus: Path, out: Path, trace: Path, *extra: str) -> None:
    from footprint.cli import main

    rc = main(["compress", "distill", "--model", str(teacher), "--layers", "2", "--data", str(corpus),
               "--val-utterances", "4", "--lr", "1e-3", "--batch-seconds", "3", "--threads", "1", "--device", "cpu",
               "--epochs", "1", "--max-steps", "2", "--energy", f"replay:{trace}", "--carbon-intensity", "400",
               "--out", str(out), *extra])
    assert rc == 0


def test_distill_records_a_metered_phase_and_continued_training_adds_one(  # noqa: F811
        tiny_teacher_dir: Path, tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    trace = _trace(tmp_path / "trace.json")
    first = tmp_path / "first"
    _distill(tiny_teacher_dir, tiny_corpus, first, trace)
    mk = read_making(first)
    assert mk is not None and len(mk.phases) == 1
    ph = mk.phases[0]
    assert ph.phase == "distill" and ph.device == "cpu" and ph.wall_s > 0 and ph.cpu_s > 0
    assert ph.energy_method == "replay" and not ph.energy_measured  # a replay is never a measurement of this run
    assert ph.energy_kwh == pytest.approx(50.0 * ph.wall_s / 3.6e6, rel=0.1)  # the 50 W trace over the phase
    assert ph.co2_kg == pytest.approx(ph.energy_kwh * 0.4)
    assert ph.carbon_intensity_g_per_kwh == 400.0 and "--carbon-intensity" in ph.carbon_intensity_source
    assert "compress distill" in ph.command and "test trace" in ph.energy_source_detail
    assert json.loads((first / "variant.json").read_text())["making"]["total"]["label"] == "estimated (replay)"
    # the epoch's row of the training log carries the energy so far: part of the phase (saving the model follows)
    log = pd.read_csv(first / "train_log.csv")
    (kwh,) = log["energy_kwh"]
    assert 0 < kwh <= ph.energy_kwh and log["co2_kg"].iloc[0] == pytest.approx(kwh * 0.4)
    # rerunning the finished run makes nothing: no phase added
    _distill(tiny_teacher_dir, tiny_corpus, first, trace)
    assert read_making(first) == mk
    # continued training from it: its phase first, then the new one, and the totals add up
    second = tmp_path / "second"
    _distill(tiny_teacher_dir, tiny_corpus, second, trace, "--init-from", str(first))
    mk2 = read_making(second)
    assert [p.phase for p in mk2.phases] == ["distill", "distill"] and mk2.phases[0] == ph
    assert mk2.wall_s == pytest.approx(ph.wall_s + mk2.phases[1].wall_s)
    assert mk2.energy_kwh == pytest.approx(ph.energy_kwh + mk2.phases[1].energy_kwh)


def test_commands_carry_a_suite_made_variants_phases_not_the_teachers(  # noqa: F811
        tiny_teacher_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    import shutil

    from footprint.cli import main

    trace = _trace(tmp_path / "trace.json")
    teacher = Path(shutil.copytree(tiny_teacher_dir, tmp_path / "teacher"))
    (teacher / "variant.json").unlink(missing_ok=True)  # a root model, as the shipped teacher: no variant.json
    add_phase(teacher, _ph("teacher", 100.0, 1.0))
    pruned = tmp_path / "pruned"
    assert main(["compress", "prune", "--model", str(teacher), "--energy", f"replay:{trace}", "--out",
                 str(pruned)]) == 0
    mk = read_making(pruned)  # the teacher is a root model: its training is its own row's cost
    assert [p.phase for p in mk.phases] == ["prune-sensitivity"] and mk.energy_kwh > 0
    add_phase(pruned, _ph("made elsewhere", 7.0, 0.25))
    q = tmp_path / "q"
    assert main(["compress", "quantize", "--model", str(pruned), "--method", "int8-dynamic", "--energy", "none",
                 "--out", str(q)]) == 0
    mk2 = read_making(q)  # a suite-made variant: carried, then this command's phase
    assert [p.phase for p in mk2.phases] == ["prune-sensitivity", "made elsewhere", "quantize:int8-dynamic"]
    assert mk2.phases[-1].energy_kwh is None and math.isnan(mk2.energy_kwh)  # no meter: unknown, not zero
    assert mk2.wall_s == pytest.approx(mk.wall_s + 7.0 + mk2.phases[-1].wall_s)


def test_training_log_rows_carry_the_energy_since_the_phase_began(tmp_path: Path) -> None:
    import argparse
    import time

    from core.train_log import TRAIN_LOG_COLUMNS, TrainLog
    from footprint.making import metered

    out = tmp_path / "s"
    args = argparse.Namespace(group="compress", compress_cmd="distill", energy=f"replay:{_trace(tmp_path / 't')}",
                              country=None, carbon_intensity=400.0, out=str(out))
    t0 = time.perf_counter()
    with metered(out, "distill", "cpu", args, resumable=True):
        out.mkdir()
        log = TrainLog(out / "train_log.csv", TRAIN_LOG_COLUMNS)
        seen = []
        for epoch in (1, 2):
            time.sleep(0.4)
            log.write({"epoch": epoch})
            seen.append(time.perf_counter() - t0)
    kwh = pd.read_csv(out / "train_log.csv")["energy_kwh"].tolist()
    # cumulative from the phase's start (the 50 W trace): not the energy since the previous row
    assert kwh == pytest.approx([50.0 * s / 3.6e6 for s in seen], rel=0.15)
    assert kwh[1] <= read_making(out).phases[0].energy_kwh


def test_an_interrupted_run_keeps_its_phase_and_the_resumed_run_adds_one(tmp_path: Path) -> None:
    import argparse

    from footprint.making import metered

    args = argparse.Namespace(group="compress", compress_cmd="distill", energy="none", country=None,
                              carbon_intensity=None, out=str(tmp_path / "s"))
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        with metered(out, "distill", "cpu", args, resumable=True):
            out.mkdir()
            raise KeyboardInterrupt
    assert [p.phase for p in read_making(out).phases] == ["distill (interrupted)"]
    with metered(out, "distill", "cpu", args, resumable=True):
        (out / "variant.json").write_text("{}")  # the finished run writes its variant afresh
    mk = read_making(out)
    assert [p.phase for p in mk.phases] == ["distill (interrupted)", "distill"] and not (out / MAKING_FILE).exists()
    assert mk.phases[1].command.startswith("footprint compress distill --energy none")
    # a one-shot command that fails made nothing: an older variant in its --out keeps its record
    with pytest.raises(RuntimeError):
        with metered(out, "quantize:int8-dynamic", "cpu", args):
            raise RuntimeError("bad input")
    assert read_making(out) == mk


def test_teacher_training_records_its_phase_and_a_continuation_adds_one(tmp_path: Path) -> None:
    from core.data.synth.corpus import SynthConfig, ensure_corpus
    from footprint.cli import main
    from test_train_teacher import TINY

    corpus = ensure_corpus(SynthConfig(hours_train=0.01, dev_utterances=4, n_train_speakers=4, n_dev_speakers=2),
                           ("train-clean", "dev-clean"), root=tmp_path / "c", progress=False)
    trace = _trace(tmp_path / "trace.json")

    def train(out: Path, *extra: str) -> None:
        assert main(["compress", "train-teacher", "--out", str(out), "--corpus", str(corpus), "--steps", "2",
                     "--eval-every", "100000", "--device", "cpu", "--threads", "1", "--batch-seconds", "12",
                     "--dev-eval-utterances", "2", "--arch-overrides", json.dumps(TINY),
                     "--energy", f"replay:{trace}", *extra]) == 0

    train(tmp_path / "run1")
    first = read_making(tmp_path / "run1" / "model")  # the model folder: no variant.json, so making.json
    assert [p.phase for p in first.phases] == ["train-teacher"] and first.energy_kwh > 0
    assert not (tmp_path / "run1" / MAKING_FILE).exists()
    kwh = pd.read_csv(tmp_path / "run1" / "train_log.csv")["energy_kwh"]
    assert kwh.notna().all() and kwh.is_monotonic_increasing and 0 < kwh.iloc[-1] <= first.energy_kwh
    train(tmp_path / "run2", "--init-from", str(tmp_path / "run1" / "model"))
    second = read_making(tmp_path / "run2" / "model")
    assert len(second.phases) == 2 and second.phases[0] == first.phases[0]
    assert second.wall_s == pytest.approx(first.wall_s + second.phases[1].wall_s)


# ----------------------------------------------------------------------------------------------- the runner
def test_runner_rows_carry_the_making_cost(tmp_path: Path) -> None:
    from bench.runner import RunConfig, run_benchmark
    from compress.variants import load_variant
    from core.results import load_results
    from helpers import save_tiny_model, tiny_corpus as make_corpus

    trace = _trace(tmp_path / "trace.json")
    data = make_corpus(tmp_path / "data", utterances=4)
    student = save_tiny_model(tmp_path / "student", layers=1)
    (student / "variant.json").write_text(json.dumps({"recipe": "distill-L1"}))
    write_making(student, Making((_ph("distill", 120.0, 0.01), _ph("distill", 60.0, 0.005))))
    bare = save_tiny_model(tmp_path / "bare", layers=1, seed=2)

    def loader(spec: str, device: str):  # noqa: ANN202 - "built" is a recipe on the student, built at load
        if spec == "built":
            v = load_variant(str(student), device)
            v.path, v.record = None, {"source_model": str(student)}
            return v
        return load_variant(spec, device)

    cfg = RunConfig(out=str(tmp_path / "run"), models=[str(student), "built", str(bare)], data=str(data), repeats=1,
                    warmup=0, energy=f"replay:{trace}", carbon_intensity=400.0, overhead_pairs=0,
                    variant_memory="off")
    run_benchmark(cfg, loader, progress=False)
    df = load_results(tmp_path / "run").set_index("variant")
    s, b, n = df.loc["student"], df.loc["built"], df.loc["bare"]
    assert s["making_wall_s"] == 180.0 and s["making_energy_kwh"] == pytest.approx(0.015)
    assert s["making_co2_kg"] == pytest.approx(0.006) and s["making_label"] == "estimated (codecarbon)"
    assert not s["making_measured"]
    # the student's record plus the build the runner metered around its loader call
    assert b["making_wall_s"] > 180.0 and b["making_energy_kwh"] > 0.015
    assert b["making_energy_kwh"] - 0.015 == pytest.approx(50.0 * (b["making_wall_s"] - 180.0) / 3.6e6, rel=0.2)
    assert b["making_label"] == "estimated (codecarbon, replay)"
    assert n["making_label"] == NOT_RECORDED and math.isnan(n["making_wall_s"]) and math.isnan(n["making_energy_kwh"])


# ----------------------------------------------------------------------------------------------- backfill
def test_backfill_is_logged_wall_time_times_the_stated_power(tmp_path: Path) -> None:
    from footprint.making_backfill import backfill

    t = tmp_path / "teacher"
    t.mkdir()
    (t / "train_log.csv").write_text("phase,step,wall_s\nh100,1,80.0\nh100,2,296.1\ncpu-a,1,50.0\ncpu-a,2,2374.3\n")
    mk = backfill(t, INTENSITY)
    # by hand: H100 700 W TDP + host 4 W (one thread) + 10 W RAM; CPU VM 2 threads x 4 W + 10 W RAM
    assert [p.phase for p in mk.phases] == ["teacher:h100", "teacher:cpu-a"]
    assert [p.wall_s for p in mk.phases] == [296.1, 2374.3]
    assert mk.phases[0].energy_kwh == pytest.approx(296.1 * 714.0 / 3.6e6)
    assert mk.phases[1].energy_kwh == pytest.approx(2374.3 * 18.0 / 3.6e6)
    assert mk.co2_kg == pytest.approx((296.1 * 714.0 + 2374.3 * 18.0) / 3.6e6 * 0.4)
    assert mk.label == f"estimated ({ESTIMATED_FROM_LOG})" and not mk.measured
    assert "714 W" in mk.phases[0].energy_source_detail and mk.phases[0].device == "cuda"

    s = tmp_path / "student"
    s.mkdir()
    (s / "variant.json").write_text(json.dumps({"recipe": "maxpool-conv4", "training": {"wall_s": 30.0}}))
    (s / "train_log.csv").write_text("epoch,wall_s\n1,10.0\n2,30.0\n")
    (s / "train_config.json").write_text(json.dumps({"threads": 1}))
    (s / "train_log.first-run.csv").write_text("epoch,wall_s\n1,100.0\n")
    add_phase(s, _ph("metered later", 5.0, 0.5))
    mk = backfill(s, INTENSITY)
    mk = backfill(s, INTENSITY)  # rerunnable: estimated phases replaced, the metered one kept
    assert [p.wall_s for p in mk.phases] == [100.0, 30.0, 5.0]
    assert mk.phases[0].energy_kwh == pytest.approx(100.0 * 18.0 / 3.6e6)  # threads unset: both of the VM's
    assert mk.phases[1].energy_kwh == pytest.approx(30.0 * 14.0 / 3.6e6)  # 1 thread: 4 W + 10 W RAM
    assert mk.phases[1].phase == "distill, run 2 of 2 (continued from run 1)"

    # a run resumed from its checkpoint meters only itself: the earlier process's part of the log is estimated
    r = tmp_path / "resumed"
    r.mkdir()
    (r / "variant.json").write_text(json.dumps({"recipe": "distill-L2", "training": {"wall_s": 4000.0}}))
    (r / "train_log.csv").write_text("epoch,wall_s\n1,1500.0\n2,4000.0\n")
    add_phase(r, _ph("distill", 1400.0, 7.0))
    mk = backfill(r, INTENSITY)
    assert [(p.phase, p.wall_s) for p in mk.phases] == [("distill", 2600.0), ("distill", 1400.0)]
    assert mk.phases[0].energy_kwh == pytest.approx(2600.0 * 18.0 / 3.6e6) and "ended before" in \
        mk.phases[0].energy_source_detail
    add_phase(r, _ph("distill", 2550.0, 9.0))  # metered phases within a minute of the log: nothing estimated
    assert [p.wall_s for p in backfill(r, INTENSITY).phases] == [1400.0, 2550.0]


def test_shipped_records_equal_their_logs() -> None:
    """The committed records are the backfill of the shipped logs (rerun it after a log changes)."""
    import csv

    from footprint.making_backfill import recompute

    root = Path(__file__).resolve().parents[1] / "compress" / "embedded"
    rows = list(csv.DictReader((root / "teacher" / "train_log.csv").open()))
    last: dict[str, float] = {}
    for r in rows:
        last[r["phase"]] = float(r["wall_s"])
    teacher = read_making(root / "teacher")
    assert teacher is not None and len(teacher.phases) == 8 == len(last)
    assert teacher.wall_s == pytest.approx(sum(last.values()))
    folders = [root / "teacher"] + sorted(p for p in (root / "students").iterdir() if p.is_dir())
    backfilled = 0
    for d in folders:
        mk = read_making(d)
        assert mk is not None, d
        if not any(p.energy_method == ESTIMATED_FROM_LOG for p in mk.phases):
            assert all(p.energy_kwh and p.energy_kwh > 0 for p in mk.phases), d  # metered as it ran
            continue
        backfilled += 1
        again = recompute(d, SimpleNamespace(g_per_kwh=mk.phases[0].carbon_intensity_g_per_kwh,
                                             source=mk.phases[0].carbon_intensity_source))
        assert [(p.phase, p.wall_s, p.energy_kwh) for p in again] == \
            [(p.phase, p.wall_s, p.energy_kwh) for p in mk.phases if p.energy_method == ESTIMATED_FROM_LOG], d
    assert backfilled > 0  # the teacher at least: its phases predate the metering
