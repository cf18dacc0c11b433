"""The runner on a tiny random model and an 8-utterance synthetic corpus: rows, timing columns, energy,
interleaving, resume, paper-loop / architecture-only scenarios, an injected loader, the CLI."""
from __future__ import annotations

import json
import math

import pytest

from core.errors import FootprintError
from core.results import SCHEMA_COLUMNS, load_results, read_meta
from bench.runner import RunConfig
from bench.runner import run_benchmark as _run_benchmark
from compress.variants import load_variant
from core.model_stats import model_stats
from core.variant import Variant
from helpers import save_tiny_model, shared_tiny_corpus, tiny_model
from bench.workload import arch_workload, dev_clean_durations

pytestmark = pytest.mark.slow  # started first under pytest-xdist (tests/conftest.py)


def run_benchmark(cfg: RunConfig, loader=load_variant, **kw):  # noqa: ANN001, ANN201
    return _run_benchmark(cfg, loader, **kw)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("assets")
    a = save_tiny_model(root / "tiny-a", layers=2)
    b = save_tiny_model(root / "tiny-b", layers=1, seed=1)
    data = shared_tiny_corpus(tmp_path_factory)
    trace = root / "trace.json"  # a constant 50 W "measured" counter, replayed in real time
    trace.write_text(json.dumps({"method": "rapl", "measured": True, "detail": "test trace",
                                 "samples": [[float(t), {"package-0": 50.0 * t}] for t in range(0, 3601, 60)]}))
    return {"a": a, "b": b, "data": data, "trace": trace, "root": root}


def _cfg(assets, out, **kw) -> RunConfig:  # noqa: ANN001
    base = dict(out=str(out), models=[str(assets["a"]), str(assets["b"])], data=str(assets["data"]), repeats=2,
                warmup=1, energy=f"replay:{assets['trace']}", carbon_intensity=400.0, overhead_pairs=1,
                variant_memory="off")  # measuring it costs seconds (a child's imports, full collections): the
    # two tests of it below ask for it
    base.update(kw)
    return RunConfig(**base)


def test_rows_columns_energy_and_interleaving(assets, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    out = tmp_path / "run"
    summary = run_benchmark(_cfg(assets, out, overhead_pairs=5), progress=False)
    assert summary.rows_written == 4 and summary.rows_skipped == 0
    df = load_results(out)
    assert list(df.columns[: len(SCHEMA_COLUMNS)]) == list(SCHEMA_COLUMNS)
    # variants interleaved between repeats, the order rotated each repeat
    assert list(zip(df["variant"], df["repeat"])) == [("tiny-a", 0), ("tiny-b", 0), ("tiny-b", 1), ("tiny-a", 1)]
    assert (df["n_utts"] == 8).all() and df["wer"].notna().all() and df["cer"].notna().all()
    assert (df["decode_s"] > 0).all() and (df["model_s"] > 0).all()
    assert (df["e2e_s"] >= df["model_s"]).all() and (df["wall_s"] >= df["model_s"]).all()
    assert df["rtfx"].tolist() == pytest.approx((df["audio_s"] / df["model_s"]).tolist())
    assert df["rtf"].tolist() == pytest.approx((1 / df["rtfx"]).tolist())
    # a replayed trace (recorded as measured) is a replay, not a measurement of this run
    assert (df["energy_method"] == "replay").all() and not df["energy_measured"].any()
    assert df["energy_source_detail"].str.contains("replay (not measured in this run)", regex=False).all()
    assert [json.loads(c) for c in df["energy_components_measured"]] == [{"package-0": False}] * 4
    # replay: no idle baseline by default, and meta.json says why
    assert (df["idle_baseline_s"] == 0).all() and df["energy_j_net"].isna().all()
    assert df["energy_j"].tolist() == pytest.approx((50 * df["wall_s"]).tolist(), rel=0.2, abs=0.5)
    assert df["co2_kg"].tolist() == pytest.approx((df["energy_kwh"] * 0.4).tolist())
    assert df["kwh_per_audio_hour"].tolist() == pytest.approx((df["energy_kwh"] / (df["audio_s"] / 3600)).tolist())
    assert (df["carbon_intensity_source"] == "user input (--carbon-intensity)").all()
    assert df["params"].iloc[0] == model_stats(tiny_model(2))["params"]
    assert (df["transformer_layers"].tolist() == [2, 1, 1, 2]) and (df["weights"] == "trained").all()
    assert (df["peak_rss_mb"] > 0).all() and df["cuda_max_alloc_mb"].isna().all()
    assert df["git_commit"].notna().all() and (df["manifest_hash"] == df["manifest_hash"].iloc[0]).all()
    assert df["tracker_overhead_frac"].notna().all()
    assert (df["runtime"] == "torch").all() and df["quantized_engine"].isna().all()  # float models, torch
    meta = read_meta(out)
    assert meta["config"]["repeats"] == 2 and meta["energy"]["cpu"]["method"] == "replay"
    # interleaved variants must not evict each other's oneDNN kernels (the default cache holds 1024)
    assert meta["onednn_primitive_cache"] == "16384"
    o = meta["tracker_overhead"]["cpu"]
    assert o["pairs"] == 5 and o["measured"] and len(o["pair_fractions"]) == 5 and o["slice_batches"] == 1
    assert df["tracker_overhead_frac"].tolist() == [o["fraction"]] * 4
    assert meta["energy"]["cpu"]["fallbacks"] == []
    assert "recorded elsewhere" in meta["energy"]["idle_baseline"]["cpu"]["why"]
    hyps = (out / "hyps" / "tiny-a__cpu.tsv").read_text().splitlines()
    assert hyps[0] == "utt_id\treference\thypothesis" and len(hyps) == 9
    assert (out / "results.csv").read_text().count("\n") == 5

    # the same command again: everything is resumed, nothing duplicated
    again = run_benchmark(_cfg(assets, out, overhead_pairs=5), progress=False)
    assert again.rows_written == 0 and again.rows_skipped == 4
    assert len(load_results(out)) == 4 and len(read_meta(out)["attempts"]) == 2
    # more repeats is another configuration: refused in the same folder
    with pytest.raises(FootprintError, match="meta.json: this folder holds a run with another configuration"):
        run_benchmark(_cfg(assets, out, repeats=3, overhead_pairs=5), progress=False)


def test_paper_loop_arch_idle_and_injected_loader(assets, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "2048")  # the user's own setting stays
    calls = []

    def loader(spec: str, device: str):  # noqa: ANN202
        calls.append(spec)
        if spec == "in-memory":
            m = tiny_model(1)
            return Variant(m, True, "in-memory", "test-recipe", model_stats(m))
        return load_variant(spec, device)

    cfg = _cfg(assets, tmp_path / "run", models=["in-memory"], repeats=1, limit=3, paper_loop=True,
               arch=["embedded"], layers=[1], arch_fraction=0.001, idle_baseline_s=0.1, overhead_pairs=0,
               energy=f"rapl,replay:{assets['trace']}", variant_memory="auto")
    run_benchmark(cfg, loader=loader, progress=False)
    assert calls == ["in-memory", "arch-embedded-L1", "in-memory"]
    df = load_results(tmp_path / "run").set_index("variant")
    assert sorted(df.index) == ["arch-embedded-L1", "in-memory", "in-memory@paper-loop"]
    assert df.loc["in-memory", "scenario"] == "batched" and df.loc["in-memory", "recipe"] == "test-recipe"
    pl = df.loc["in-memory@paper-loop"]
    assert pl["scenario"] == "paper-loop" and pl["batch_size"] == 1 and pl["n_utts"] == 3
    # layer-norm model, logits equal to 1e-4 padded or not: the same hypotheses one by one as in a batch
    assert (pl["wer"], pl["cer"]) == pytest.approx((df.loc["in-memory", "wer"], df.loc["in-memory", "cer"]))
    hyps = {v: (tmp_path / "run" / "hyps" / f"{v}__cpu.tsv").read_text() for v in ("in-memory", "in-memory@paper-loop")}
    assert hyps["in-memory"] == hyps["in-memory@paper-loop"] and len(hyps["in-memory"].splitlines()) == 4
    arch = df.loc["arch-embedded-L1"]
    assert arch["weights"] == "random" and math.isnan(arch["wer"]) and math.isnan(arch["decode_s"])
    assert arch["scenario"] == "arch" and 0 < arch["workload_fraction"] < 0.01 and arch["n_utts"] == 3
    assert arch["model_s_full_est"] == pytest.approx(arch["model_s"] / arch["workload_fraction"])
    assert arch["recipe"] == "arch-embedded-L1" and arch["transformer_layers"] == 1
    assert df["idle_w"].tolist() == pytest.approx([50.0] * 3, rel=0.2)
    # net beside gross (energy_j stays the gross total), the baseline's length recorded
    assert (df["energy_j"] == df["energy_j_gross"]).all() and (df["energy_j"] > 0).all()
    # a constant 50 W replay: the idle baseline is all of it, so net (gross - idle W x window) is about nothing
    assert (df["energy_j_net"] < 0.1 * df["energy_j"]).all()
    assert (df["idle_baseline_s"] == 0.1).all() and df["energy_source_detail"].str.contains("idle").all()
    meta = read_meta(tmp_path / "run")
    assert "rapl" in meta["energy"]["cpu"]["fallbacks"][0]
    assert meta["onednn_primitive_cache"] == "2048"
    # a closure does not pickle: variant memory measured in this process, as a delta, and labelled so
    # (a lower bound: reused heap can hide it, so it is floored at the variant's weights, and says so);
    # random-weight rows show no memory in any table: not measured
    trained = df[df["weights"] == "trained"]
    assert trained["variant_peak_method"].str.startswith("inprocess-vmhwm-delta").all()
    assert (trained["variant_peak_mb"] > 0).all() and math.isnan(arch["variant_peak_mb"])


def test_cuda_on_a_cpu_machine_is_one_line(assets, tmp_path) -> None:  # noqa: ANN001
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(FootprintError, match="--device cuda: no CUDA GPU visible"):
        run_benchmark(_cfg(assets, tmp_path / "run", devices=["cuda"]), progress=False)


def test_unloadable_variant_is_skipped_with_reason(assets, tmp_path) -> None:  # noqa: ANN001
    cfg = _cfg(assets, tmp_path / "run", models=[str(assets["a"]), str(assets["root"])], repeats=1,
               energy="none", overhead_pairs=0)
    run_benchmark(cfg, progress=False)
    assert list(load_results(tmp_path / "run")["variant"]) == ["tiny-a"]
    skipped = read_meta(tmp_path / "run")["skipped"]
    assert skipped[0]["variant"] == assets["root"].name and skipped[0]["reason"]


def test_dev_clean_shaped_workload() -> None:
    d = dev_clean_durations()
    assert len(d) == 2703 and d.mean() == pytest.approx(7.2, abs=1e-3)
    assert d.min() >= 1.5 and d.max() == pytest.approx(32.6)
    wl = arch_workload(0.01)
    assert len(wl) == 27 and wl.references is None and not wl.from_files
    assert wl.fraction == pytest.approx(wl.audio_s / wl.full_audio_s)
    assert wl.audio_s / len(wl) == pytest.approx(7.2, rel=0.15)  # quantile sample keeps the mean
    a = wl.loader(0)
    assert a.dtype.name == "float32" and len(a) == round(wl.durations[0] * 16000)
    sh = [wl.shard(r, 2) for r in range(2)]
    assert sorted(sh[0].utt_ids + sh[1].utt_ids) == sorted(wl.utt_ids)


def test_check_device_command(capsys) -> None:  # noqa: ANN001
    import torch

    from footprint.cli import main

    assert main(["bench", "check-device", "--device", "cpu", "--energy", "none"], groups=["bench"]) == 0
    assert "cpu:" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert main(["bench", "check-device", "--device", "cuda"], groups=["bench"]) == 2
        assert "no CUDA GPU visible" in capsys.readouterr().err


def test_failure_still_closes_meters_store_and_process_group(assets, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from bench import energy
    from bench import runner
    from core import distributed, results

    closed: list[str] = []
    real_open, real_close, real_init = energy.open_meter, results.ResultsStore.close, distributed.init_from_env

    def open_meter(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        m = real_open(*a, **kw)
        monkeypatch.setattr(m, "close", lambda: closed.append("meter"))
        return m

    def init_from_env(devices):  # noqa: ANN001, ANN202
        ctx = real_init(devices)
        monkeypatch.setattr(ctx, "close", lambda: closed.append("ctx"))
        return ctx

    def store_close(self) -> None:  # noqa: ANN001
        closed.append("store")
        real_close(self)

    def fail(self, *a) -> int:  # noqa: ANN001, ANN002
        raise RuntimeError("the GPU fell off the bus")

    monkeypatch.setattr(energy, "open_meter", open_meter)
    monkeypatch.setattr(results.ResultsStore, "close", store_close)
    monkeypatch.setattr(distributed, "init_from_env", init_from_env)
    monkeypatch.setattr(runner._Run, "timed_repeats", fail)
    with pytest.raises(RuntimeError, match="fell off"):
        run_benchmark(_cfg(assets, tmp_path / "run", repeats=1, overhead_pairs=0), progress=False)
    assert closed == ["meter", "store", "ctx"]  # the reverse of opening


def test_show_prints_medians_of_every_scenario(assets, tmp_path, capsys) -> None:  # noqa: ANN001
    from footprint.cli import main

    out = tmp_path / "run"
    run_benchmark(_cfg(assets, out, models=[str(assets["b"])], repeats=2, limit=2, paper_loop=True, energy="none",
                       overhead_pairs=0), progress=False)
    assert main(["bench", "show", str(out)], groups=["bench"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["variant", "device", "repeats", "weights"] and "e2e_s" in lines[0].split()
    assert sorted(line.split()[0] for line in lines[1:]) == ["tiny-b", "tiny-b@paper-loop"]
    assert all(line.split()[2] == "2" for line in lines[1:])


def test_variant_peak_memory_in_a_child_once_per_variant_and_device(assets, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Finding 4: variant_peak_mb from a child process with only that variant loaded, stored once in the passes
    table, copied to every row, and not measured again when a run resumes."""
    import sqlite3

    from bench import memory
    from core.results import ResultsStore

    out = tmp_path / "run"
    cfg = _cfg(assets, out, models=[str(assets["b"])], repeats=2, limit=2, overhead_pairs=0, energy="none",
               variant_memory="auto")
    run_benchmark(cfg, progress=False)
    df = load_results(out)
    assert (df["variant_peak_method"] == "child-vmhwm").all()
    assert df["variant_peak_mb"].nunique() == 1 and 0 < df["variant_peak_mb"].iloc[0] < df["peak_rss_mb"].min()
    store = ResultsStore(out)
    mem = store.passes("memory")
    store.close()
    assert len(mem) == 1 and mem[0]["variant"] == "tiny-b" and mem[0]["device"] == "cpu"
    # drop the last row and resume: that repeat is run again, the memory figure is reused, not remeasured
    con = sqlite3.connect(out / "results.sqlite")
    with con:
        con.execute("DELETE FROM results WHERE repeat = 1")
    con.close()
    monkeypatch.setattr(memory, "measure_variant", lambda *a, **k: pytest.fail("remeasured on resume"))
    again = run_benchmark(cfg, progress=False)
    assert again.rows_written == 1
    df2 = load_results(out)
    assert len(df2) == 2 and df2["variant_peak_mb"].tolist() == [df["variant_peak_mb"].iloc[0]] * 2


@pytest.mark.parametrize("cores, jump, flagged", [(0.05, 0.0, False), (0.0, 0.03, False), (0.0, 2.0, True)])
def test_every_repeat_records_others_cpu_time_and_frequency(assets, tmp_path, monkeypatch, cores, jump,  # noqa: ANN001
                                                            flagged) -> None:
    """Finding 6: each timed repeat's row says how much CPU the rest of the machine used and whether that
    flagged it as contended.  The machine's busy time is faked as this process's own plus others using ``cores``
    of one core all along plus ``jump`` seconds per reading: others' time, share and flag are then known."""
    import itertools
    import time

    import psutil

    from bench import trackers

    # this process's own CPU time is faked too, as half a core of the clock: the kernel's counter ticks in 10 ms
    # steps, so a real reading taken microseconds apart from the tracker's can differ by a whole tick, more than
    # 0.05 of a core over a repeat this short
    calls = itertools.count()
    monkeypatch.setattr(trackers, "_own_s", lambda proc: 0.5 * time.perf_counter())
    monkeypatch.setattr(trackers, "_busy_s", lambda t: (0.5 + cores) * time.perf_counter() + jump * next(calls))
    out = tmp_path / "run"
    run_benchmark(_cfg(assets, out, models=[str(assets["b"])], repeats=2, limit=2, overhead_pairs=0,
                       energy="none"), progress=False)
    df = load_results(out)
    if cores:  # others' core-seconds over the window's (window x CPUs); the window also spans the readings
        assert df["others_cpu_share"].tolist() == pytest.approx([cores / (psutil.cpu_count() or 1)] * 2, rel=0.2)
    else:
        assert df["others_cpu_s"].tolist() == pytest.approx([jump] * 2, abs=1e-3)
    # whatever the repeat's length: 0.05 of a core is under the 0.10 threshold; 0.03 s is under the 0.05 s
    # granularity floor (though over 0.10 of a core for a repeat under 0.3 s); 2 s is over both (repeats < 20 s)
    assert df["contended"].tolist() == [flagged] * 2
    assert "cpu_freq_mhz" in df.columns and "others_cpu_s" in read_meta(out)["timing"]
