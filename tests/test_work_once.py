"""Work done once per run: each variant built once, its WER from the accuracy cache when nothing that changes it
changed (--fresh computes it again), the phases' seconds, one progress bar whose units add up, a line per variant."""
from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import pytest

from bench import accuracy_cache, memory
from bench.runner import RunConfig, run_benchmark
from compress.variants import load_variant
from core.results import load_results, read_meta
from helpers import save_tiny_model, shared_tiny_corpus, tiny_model

pytestmark = pytest.mark.slow  # started first under pytest-xdist (tests/conftest.py)


class CountingLoader:
    """load_variant that appends each spec it builds to a file: counts builds in spawned children too."""

    def __init__(self, log_file: Path) -> None:
        self.log_file = str(log_file)

    def __call__(self, spec: str, device: str):  # noqa: ANN204
        with open(self.log_file, "a") as f:
            f.write(spec + "\n")
        return load_variant(spec, device)

    def calls(self) -> list[str]:
        p = Path(self.log_file)
        return p.read_text().split() if p.exists() else []


@pytest.fixture(scope="module")
def assets(tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("once")
    return {"a": save_tiny_model(root / "tiny-a", layers=2), "b": save_tiny_model(root / "tiny-b", layers=1, seed=1),
            "data": shared_tiny_corpus(tmp_path_factory)}


def _cfg(assets, out, **kw) -> RunConfig:  # noqa: ANN001
    base = dict(out=str(out), models=[str(assets["a"]), str(assets["b"])], data=str(assets["data"]), repeats=2,
                warmup=1, energy="none", carbon_intensity=400.0, overhead_pairs=0, scenarios=["batched"],
                variant_memory="off")  # measuring it costs seconds (a child's imports, full collections): the
    # tests of building once and of the progress bar ask for it
    base.update(kw)
    return RunConfig(**base)


def test_each_variant_is_built_once_per_run_with_warm_caches(assets, tmp_path) -> None:  # noqa: ANN001
    """A first run builds a trained variant twice (here, and in the memory child, which measures it alone); a
    later run takes the memory from the cache and builds each variant once; architecture rows never get a child."""
    cfg = dict(arch=["embedded"], layers=[1], arch_fraction=0.001, repeats=1, scenarios=["batched", "unseen"],
               variant_memory="auto")
    first = CountingLoader(tmp_path / "first.txt")
    assert memory.picklable(first)  # so the memory is measured in a child that builds the variant again
    run_benchmark(_cfg(assets, tmp_path / "first", **cfg), first, progress=False)
    a, b = str(assets["a"]), str(assets["b"])
    assert sorted(first.calls()) == sorted([a, a, b, b, "arch-embedded-L1"])
    df = load_results(tmp_path / "first")
    trained = df[df["weights"] == "trained"]
    assert (trained["variant_peak_method"] == "child-vmhwm").all() and (trained["variant_peak_mb"] > 0).all()
    arch = df[df["weights"] == "random"]
    assert len(arch) == 1 and math.isnan(arch["variant_peak_mb"].iloc[0])
    assert arch["variant_peak_method"].iloc[0] == "not measured (random weights: timing only)"
    # the phases this run went through, the arch job's apart; they add up to the total
    phases = read_meta(tmp_path / "first")["phases_s"]
    for name in ("build", "memory", "accuracy", "unseen warm-up", "unseen repeats", "timed repeats", "arch build",
                 "arch warm-up", "arch timed repeats"):
        assert name in phases, name
    assert "arch memory" not in phases  # random weights: no memory measured
    assert "warm-up" not in phases  # the accuracy pass ran the whole plan: no warm-up batches after it
    total = phases.pop("total")
    assert sum(phases.values()) == pytest.approx(total, abs=0.1 * len(phases))

    second = CountingLoader(tmp_path / "second.txt")
    run_benchmark(_cfg(assets, tmp_path / "second", **cfg), second, progress=False)
    assert sorted(second.calls()) == sorted([a, b, "arch-embedded-L1"])
    df2 = load_results(tmp_path / "second")
    mem = {k: df[df["weights"] == "trained"].set_index("variant")["variant_peak_mb"].to_dict() for k, df in
           (("1", df), ("2", df2))}
    assert mem["1"] == mem["2"]
    assert read_meta(tmp_path / "second")["memory_cache"]["tiny-a|cpu"]["hit"] is True

    # in this process (the option): built once in a first run too, figures not kept for a later run
    third = CountingLoader(tmp_path / "third.txt")
    run_benchmark(_cfg(assets, tmp_path / "third", **{**cfg, "variant_memory": "inprocess"}), third, progress=False)
    assert sorted(third.calls()) == sorted([a, b, "arch-embedded-L1"])
    assert len(list(accuracy_cache.cache_dir("memory").glob("*.json"))) == 2


def test_accuracy_cache_hit_fresh_and_what_a_hit_keeps(assets, tmp_path, monkeypatch, caplog) -> None:  # noqa: ANN001
    import core.scoring

    scored = []
    real_score = core.scoring.score
    monkeypatch.setattr(core.scoring, "score", lambda refs, hyps: scored.append(len(refs)) or real_score(refs, hyps))

    first = tmp_path / "first"
    run_benchmark(_cfg(assets, first), load_variant, progress=False)
    assert len(scored) == 2 and len(list(accuracy_cache.cache_dir().glob("*.json"))) == 2
    df1 = load_results(first)
    assert (df1["accuracy_source"] == "measured").all()

    scored.clear()
    second = tmp_path / "second"
    with caplog.at_level(logging.INFO):
        run_benchmark(_cfg(assets, second), load_variant, progress=False)
    assert scored == []  # nothing scored again
    df2 = load_results(second)
    assert (df2["accuracy_source"] == "cache").all()
    assert df2.set_index(["variant", "repeat"])["wer"].to_dict() == \
        df1.set_index(["variant", "repeat"])["wer"].to_dict()
    for v in ("tiny-a", "tiny-b"):  # the per-utterance hypotheses are there as if computed in this run
        assert (second / "hyps" / f"{v}__cpu.tsv").read_text() == (first / "hyps" / f"{v}__cpu.tsv").read_text()
    meta = read_meta(second)
    assert meta["accuracy_cache"]["tiny-a|cpu"]["hit"] is True
    assert meta["accuracy_cache"]["tiny-a|cpu"]["computed_in"] == read_meta(first)["run_id"]
    assert "warm pass (accuracy cached)" in meta["phases_s"]  # the warm scenario's pass over every shape still ran
    assert "(accuracy cache: computed in run" in caplog.text

    third = tmp_path / "third"
    run_benchmark(_cfg(assets, third, fresh=True), load_variant, progress=False)
    assert len(scored) == 2 and (load_results(third)["accuracy_source"] == "measured").all()
    assert read_meta(third)["accuracy_cache"]["tiny-b|cpu"] == {
        "hit": False, "why": "--fresh", "key": read_meta(third)["accuracy_cache"]["tiny-b|cpu"]["key"]}

    # an unreadable entry is a miss, not an error
    for f in accuracy_cache.cache_dir().glob("*.json"):
        f.write_text("{not json")
    scored.clear()
    run_benchmark(_cfg(assets, tmp_path / "fourth"), load_variant, progress=False)
    assert len(scored) == 2


def test_a_timed_share_times_warm_batches_of_the_accuracy_plan_and_scores_every_utterance(assets, tmp_path,
                                                                                        monkeypatch) -> None:  # noqa: ANN001
    """``timed_share``: each warm repeat runs every round(1/share)-th batch of the accuracy pass's plan, so every
    shape it times ran before (first run: in the accuracy pass; with the accuracy cached: in a warm pass over
    those batches only); WER still over every utterance; the config hash of the default stays what it was."""
    from bench import runner

    passes: list[int] = []
    real = runner.run_pass

    def spy(tr, wl, scenario, **kw):  # noqa: ANN001, ANN202
        res = real(tr, wl, scenario, **kw)
        passes.append(res.n_utts)
        return res

    monkeypatch.setattr(runner, "run_pass", spy)
    one = dict(models=[str(assets["a"])], batch_size=2, timed_share=0.5)  # 8 utterances: 4 batches, 2 timed
    run_benchmark(_cfg(assets, tmp_path / "first", **one), load_variant, progress=False)
    df = load_results(tmp_path / "first")
    assert len(df) == 2 and (df["n_utts"] == 4).all() and (df["shapes_reused"] == 2).all()  # warm: both batches
    assert len((tmp_path / "first" / "hyps" / "tiny-a__cpu.tsv").read_text().splitlines()) >= 8  # WER over all 8
    assert read_meta(tmp_path / "first")["n_utts"] == 8
    assert passes[:1] == [8] and 4 in passes[1:]

    passes.clear()
    run_benchmark(_cfg(assets, tmp_path / "second", **one), load_variant, progress=False)  # accuracy cached
    df2 = load_results(tmp_path / "second")
    assert (df2["accuracy_source"] == "cache").all() and (df2["shapes_reused"] == 2).all()
    assert df2["wer"].tolist() == df["wer"].tolist() and max(passes) == 4  # no pass over the whole set

    assert "timed_share" not in RunConfig().hash_payload()  # runs made before the option resume as they were
    assert RunConfig(timed_share=0.5).hash_payload()["timed_share"] == 0.5
    with pytest.raises(Exception, match="--timed-share 0"):
        run_benchmark(_cfg(assets, tmp_path / "bad", timed_share=0.0), load_variant, progress=False)


def _key(model, threads: int = 1, utts: tuple = ("u1", "u2"), manifest: str = "m1", record: dict | None = None,
         batch_size: int = 8) -> str:
    import types

    import torch

    torch.set_num_threads(threads)
    v = types.SimpleNamespace(record=record or {"recipe": "x"}, info={}, recipe="x", dtype=torch.float32)
    tr = types.SimpleNamespace(model=model, batch_size=batch_size, max_batch_seconds=240.0, do_normalize=True,
                               dtype=None, buckets=None)
    wl = types.SimpleNamespace(manifest_hash=manifest, dataset="d", utt_ids=list(utts))
    return accuracy_cache.key_of(accuracy_cache.key_parts(accuracy_cache.variant_hash(v, tr), tr, wl, "cpu", "CPU X"))


def test_the_key_changes_with_whatever_changes_a_hypothesis() -> None:
    import torch

    threads = torch.get_num_threads()
    try:
        m = tiny_model(1)
        k = _key(m)
        assert _key(tiny_model(1)) == k  # the same weights built again: the same key
        assert _key(tiny_model(1, seed=1)) != k  # other weights
        m2 = tiny_model(1)
        with torch.no_grad():
            next(iter(m2.parameters())).view(-1)[0] += 1e-6  # one weight, barely
        assert _key(m2) != k
        assert _key(m, threads=2) != k  # reduction order
        assert _key(m, utts=("u1",)) != k and _key(m, manifest="m2") != k  # --limit, other data
        assert _key(m, record={"recipe": "x", "calibration_data": "other"}) != k  # recipe options, calibration
        assert _key(m, batch_size=1) != k  # padding
        # int8 weights hash by their integer values and scales, the same for the same quantisation
        q1 = torch.ao.quantization.quantize_dynamic(tiny_model(1), {torch.nn.Linear}, dtype=torch.qint8)
        q2 = torch.ao.quantization.quantize_dynamic(tiny_model(1), {torch.nn.Linear}, dtype=torch.qint8)
        assert _key(q1) == _key(q2) != k
    finally:
        torch.set_num_threads(threads)


def test_key_covers_the_software(monkeypatch) -> None:  # noqa: ANN001
    import torch

    m = tiny_model(1)
    k = _key(m, threads=torch.get_num_threads())
    monkeypatch.setattr(accuracy_cache, "code_hash", lambda: "other code")
    assert _key(m, threads=torch.get_num_threads()) != k
    monkeypatch.undo()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert _key(m, threads=torch.get_num_threads()) != k


def test_one_bar_whose_units_add_up_and_a_line_per_variant(assets, tmp_path, monkeypatch, caplog) -> None:  # noqa: ANN001
    from bench import progress

    steps, bars = [], []
    monkeypatch.setattr(progress.JobProgress, "step", lambda self, units, label="": steps.append((units, label)))
    real_open = progress.JobProgress.open
    monkeypatch.setattr(progress.JobProgress, "open", lambda self: bars.append(self) or real_open(self))
    with caplog.at_level(logging.INFO):
        run_benchmark(_cfg(assets, tmp_path / "run", scenarios=["batched", "unseen"], overhead_pairs=1,
                           variant_memory="inprocess"),
                      load_variant, progress=True)
    assert len(bars) == 1
    bar = bars[0]
    assert sum(u for u, _ in steps) == pytest.approx(bar.total)  # every planned step advanced, nothing extra
    labels = [label for _, label in steps]
    for step in ("build", "memory", "unseen warm-up", "unseen #0", "unseen #1", "accuracy", "warm-up", "repeat #0",
                 "repeat #1"):
        assert f"tiny-b {step}" in labels, step
    assert "tracker overhead" in labels
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tiny-")]
    assert any(x.startswith("tiny-b on cpu: WER ") and "warm" in x and "unseen vs tiny-a" in x for x in lines), lines
    assert any(x.startswith("tiny-a on cpu: WER ") and " vs " not in x for x in lines), lines  # the reference itself


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap and /proc/self/clear_refs: Linux only")
def test_in_process_memory_counts_heap_an_earlier_variant_freed() -> None:
    """Heap freed by an earlier variant is given back before the baseline, so the next variant's activations
    raise the high-water mark instead of hiding in reused pages (the in-process measurement's lower bound)."""
    import torch

    class Tr:  # a "variant" whose forward holds 256 x 64 KiB of heap while it runs
        model = object()

        def make_inputs(self, audio):  # noqa: ANN001, ANN201
            return audio

        def forward(self, inputs):  # noqa: ANN001, ANN201
            held = [torch.ones(16 * 1024) for _ in range(256)]  # 64 KiB each: heap, below the mmap threshold
            return sum(float(t[0]) for t in held)

    earlier = [torch.ones(16 * 1024) for _ in range(512)]  # an earlier variant's freed heap, below a live pin
    pin = torch.ones(16)
    del earlier
    base = memory.baseline("cpu", trim=True)
    out = memory.peak_over(Tr(), [], "cpu", base, "inprocess")
    assert out["variant_peak_mb"] > 0.5 * 256 * 0.0655, out  # most of the 16.8 MB the forward held
    del pin
