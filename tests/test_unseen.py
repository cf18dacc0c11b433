"""Issue 25: the unseen scenario (held-out lengths), one-time costs and break-even, oneDNN's cache in effect."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import runner, unseen
from bench.config import RunConfig, config_hash
from bench.ratios import compute, format_report
from core.results import load_results, read_meta
from core.schema import break_even_hours, one_time_s
from compress.variants import load_variant
from helpers import save_tiny_model, shared_tiny_corpus

ROOT = Path(__file__).resolve().parents[1]


# -- the splitter ----------------------------------------------------------------------------------------------
def _lengths(durs, idx):  # noqa: ANN001, ANN202
    return {round(durs[i] * unseen.SAMPLE_RATE) for i in idx}


def test_split_is_length_disjoint_seeded_and_keeps_the_longest() -> None:
    durs = [1.0, 2.0, 2.0, 3.5, 4.25, 5.0, 6.0, 7.5, 8.0, 9.0, 9.0, 12.0]  # two pairs of equal lengths
    sp = unseen.split(durs, repeats=3, share=0.5, seed=1)
    groups = [sp.rest, *sp.subsets]
    assert sorted(i for g in groups for i in g) == list(range(len(durs)))  # every utterance, once
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            assert not _lengths(durs, groups[a]) & _lengths(durs, groups[b]), (a, b)
    assert all(sp.subsets) and durs.index(12.0) in sp.rest
    assert sum(map(len, sp.subsets)) >= 6 * 0.99
    assert unseen.split(durs, 3, 0.5, seed=1) == sp and unseen.split(durs, 3, 0.5, seed=2) != sp
    assert unseen.split([1.0, 1.0, 2.0], repeats=2) is None  # two distinct lengths: one repeat and a warm-up


def test_shape_log_counts_shapes_run_before() -> None:
    log = unseen.ShapeLog()
    assert log.record("a", [(8, 100), (8, 200)]) == 0
    assert log.record("b", [(8, 100)]) == 0           # per variant
    assert log.record("a", [(8, 300), (8, 100), (8, 300)]) == 2


# -- a tiny real run -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory, request):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("unseen")
    a = save_tiny_model(root / "tiny-a", layers=2)
    b = save_tiny_model(root / "tiny-b", layers=1, seed=1)
    data = shared_tiny_corpus(tmp_path_factory)
    calls: list[tuple] = []
    real = runner.run_pass

    def spy(tr, wl, scenario, **kw):  # noqa: ANN001, ANN202
        res = real(tr, wl, scenario, **kw)
        timed_unseen = bool(kw.get("keep_hyps")) and kw.get("batches") is None and len(wl) < 8
        calls.append((id(tr), timed_unseen, tuple(wl.utt_ids), [tuple(s) for s in res.shapes]))
        return res

    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)
    mp.setattr(runner, "run_pass", spy)
    out = root / "run"
    cfg = RunConfig(out=str(out), models=[str(a), str(b)], data=str(data), repeats=2, warmup=1, energy="none",
                    overhead_pairs=0, variant_memory="off", scenarios=["batched", "unseen"])
    summary = runner.run_benchmark(cfg, load_variant, progress=False)
    return {"out": out, "calls": calls, "summary": summary, "cfg": cfg}


def test_unseen_repeats_never_run_a_shape_run_before(run) -> None:  # noqa: ANN001
    df = load_results(run["out"])
    u = df[df["scenario"] == "unseen"]
    assert len(u) == 4 and len(df[df["scenario"] == "batched"]) == 4 and run["summary"].rows_written == 8
    assert (u["shapes_reused"] == 0).all() and (u["n_utts"] < 8).all() and u["wer"].notna().all()
    assert (df[df["scenario"] == "batched"]["shapes_reused"] > 0).all()  # warm: every shape ran before
    # independently of the runner's own count: each timed unseen pass against everything its variant ran before
    seen: dict[int, set] = {}
    timed: dict[int, list] = {}
    for tr, is_unseen, ids, shapes in run["calls"]:
        if is_unseen:
            assert not set(shapes) & seen.get(tr, set()), "an unseen repeat ran a shape this variant had run"
            timed.setdefault(tr, []).append(ids)
        seen.setdefault(tr, set()).update(shapes)
    assert len(timed) == 2 and all(len(v) == 2 for v in timed.values())
    t, v = timed.values()
    assert t == v and not set(t[0]) & set(t[1])  # same subset per repeat for both, a new one each repeat


def test_unseen_repeats_come_before_any_whole_set_pass(run) -> None:  # noqa: ANN001
    """A whole-set pass (accuracy, warm repeats) runs every length, held-out ones included: none may come first."""
    calls = run["calls"]
    first_whole = min(i for i, c in enumerate(calls) if len(c[2]) == 8)
    assert sum(c[1] for c in calls[:first_whole]) == 4 and not any(c[1] for c in calls[first_whole:])


def test_one_time_columns_onednn_and_hash(run) -> None:  # noqa: ANN001
    df = load_results(run["out"])
    meta = read_meta(run["out"])
    assert (df["load_s"] > 0).all() and df["export_s"].isna().all() and (df["compile_cache"] == "").all()
    in_effect = meta["onednn_primitive_cache_in_effect"]
    assert (df["onednn_cache"] == in_effect).all() and in_effect  # torch ran before: unknown, or a start-up value
    cfg = run["cfg"]
    assert meta["config_hash"] == config_hash(cfg, meta["manifest_hash"], in_effect)
    assert config_hash(cfg, "m", "16384") != config_hash(cfg, "m", "1024")


def test_ratios_show_warm_unseen_costs_and_break_even(run) -> None:  # noqa: ANN001
    res = compute(run["out"])
    vs = [r for r in res["ratios"] if r["kind"] == "vs-teacher"]
    assert {r["scenario"] for r in vs} == set()  # no teacher named embedded/baseline/teacher in this run
    text = format_report(res)
    assert "one-time cost" in text and "tiny-a" in text
    costs = {c["variant"]: c for c in res["one_time"]}
    assert set(costs) == {"tiny-a", "tiny-b"} and costs["tiny-a"]["one_time_s"] > 0


def test_ratios_against_a_teacher(run, tmp_path) -> None:  # noqa: ANN001
    """Rename tiny-a to the teacher: both scenarios' ratios, labelled, and break-even from the unseen times."""
    import shutil
    import sqlite3

    d = tmp_path / "r"
    shutil.copytree(run["out"], d)
    con = sqlite3.connect(d / "results.sqlite")
    con.execute("UPDATE results SET variant = 'embedded' WHERE variant = 'tiny-a'")
    con.commit()
    con.close()
    res = compute(d)
    vs = [r for r in res["ratios"] if r["kind"] == "vs-teacher"]
    assert {(r["scenario"], r["metric"]) for r in vs} == {(s, m) for s in ("batched", "unseen")
                                                          for m in ("rtfx (model only)", "end-to-end")}
    text = format_report(res)
    assert "warm model x" in text and "unseen model x" in text and "break-even (unseen)" in text
    costs = {c["variant"]: c for c in res["one_time"]}
    assert costs["embedded"]["break_even_h_model"] == 0.0 and costs["tiny-b"]["break_even_scenario"] == "unseen"
    df = load_results(d)
    u = df[df["scenario"] == "unseen"]
    per = {v: (g["model_s"] / g["audio_s"]).median() for v, g in u.groupby("variant")}
    want = break_even_hours(costs["tiny-b"]["one_time_s"], costs["embedded"]["one_time_s"], per["tiny-b"],
                            per["embedded"])
    got = costs["tiny-b"]["break_even_h_model"]
    assert (math.isinf(got) and math.isinf(want)) or got == pytest.approx(want)


# -- arithmetic --------------------------------------------------------------------------------------------------
def test_break_even_hours_by_hand() -> None:
    # 90 s more up front, 0.1 s saved per audio second = 360 s per audio hour -> 0.25 h
    assert break_even_hours(100.0, 10.0, 0.1, 0.2) == pytest.approx(0.25)
    assert break_even_hours(5.0, 10.0, 0.1, 0.2) == 0.0            # cheaper up front and faster: at once
    assert break_even_hours(100.0, 10.0, 0.2, 0.2) == math.inf     # not faster: never
    assert break_even_hours(100.0, 10.0, 0.3, 0.2) == math.inf
    assert math.isnan(break_even_hours(float("nan"), 10.0, 0.1, 0.2))
    assert one_time_s(30.0, 25.0, float("nan"), float("nan")) == 30.0   # compiled while loading: counted once
    assert one_time_s(2.0, 25.0, 5.0, 1.0) == 31.0                      # built earlier: the parts count
    assert math.isnan(one_time_s(float("nan")))


# -- oneDNN's cache: set before torch, recorded as in effect -----------------------------------------------------
def _py(code: str, **env: str) -> str:
    e = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    e.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.strip()


def test_onednn_in_effect_depends_on_when_it_was_set() -> None:
    probe = "import json, sys; from bench import onednn; {pre}; print(json.dumps([onednn.ensure_cache(), '{var}']))"
    fresh = json.loads(_py(probe.format(pre="pass", var="")))[0]
    late = json.loads(_py(probe.format(pre="import torch", var="")))[0]
    user = json.loads(_py(probe.format(pre="import torch", var=""), ONEDNN_PRIMITIVE_CACHE_CAPACITY="2048"))[0]
    assert (fresh, late, user) == ("16384", "unknown: set after oneDNN started", "2048")


def test_console_script_sets_it_before_torch() -> None:
    out = _py("import os, sys\nfrom footprint.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
              "    pass\nfrom bench import onednn\n"
              "print(os.environ.get(onednn.ENV), onednn.in_effect(), 'torch' in sys.modules)")
    assert out.splitlines()[-1] == "16384 16384 False"


def test_resume_at_another_kernel_cache_capacity_is_refused(run, monkeypatch) -> None:  # noqa: ANN001
    from bench import onednn
    from core.errors import FootprintError

    monkeypatch.setattr(onednn, "ensure_cache", lambda: "1024")  # as if oneDNN ran at another capacity now
    with pytest.raises(FootprintError, match="another configuration"):
        runner.run_benchmark(run["cfg"], load_variant, progress=False)
