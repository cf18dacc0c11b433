"""Issue 26 (work done once): the unseen repeats hold out whole batches of the accuracy pass's plan, and the accuracy
pass takes their transcripts instead of running those batches again."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench import accuracy, runner, unseen
from bench.config import RunConfig
from compress.variants import load_variant
from core.inference import plan_batches
from helpers import save_tiny_model, shared_tiny_corpus


def _whole(plan, subset) -> bool:  # noqa: ANN001
    """Every batch of ``plan`` lies inside ``subset`` or outside it."""
    s = set(subset)
    return all(set(b) <= s or not set(b) & s for b in plan)


def test_split_batches_holds_out_whole_batches_length_disjoint_balanced_and_seeded() -> None:
    durs = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 12.0]
    plan = plan_batches(durs, 2)
    sp = unseen.split_batches(plan, durs, repeats=2, share=0.5, seed=3)
    assert sorted(sp.rest + [i for s in sp.subsets for i in s]) == list(range(len(durs)))  # each utterance once
    assert all(_whole(plan, s) for s in sp.subsets) and all(sp.subsets)
    assert sum(len(s) for s in sp.subsets) == 2 * round(0.5 * len(plan))  # 3 of the 6 batches, 2 utterances each
    assert durs.index(12.0) in sp.rest  # the longest stays for the warm-up
    audio = [sum(durs[i] for i in s) for s in sp.subsets]
    assert max(audio) - min(audio) <= max(durs[i] + durs[j] for i, j in plan if i != 11 and j != 11)  # <= a batch
    assert unseen.split_batches(plan, durs, 2, 0.5, seed=3) == sp != unseen.split_batches(plan, durs, 2, 0.5, seed=4)
    # a length in two batches: neither batch may be held out (the other would have run it)
    shared = [1.0, 2.0, 2.0, 3.0, 4.0, 12.0]  # batches {0,1} {2,3} {4,5}: 2.0 in the first two
    sp2 = unseen.split_batches(plan_batches(shared, 2), shared, repeats=1, share=0.9, seed=0)
    assert sp2 is None or sp2.subsets == [[]] or not {1, 2} & set(sp2.subsets[0])
    assert unseen.split_batches(plan_batches(shared, 2), shared, repeats=2) is None  # one batch qualifies


def test_aligned_maps_a_plans_batches_into_each_subset() -> None:
    durs = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 12.0]
    plan = plan_batches(durs, 2)
    sp = unseen.split_batches(plan, durs, repeats=2, share=0.5, seed=3)
    per = unseen.aligned(sp, plan)
    for r, subset in enumerate(sp.subsets):  # positions in the subset, back to the plan's own batches
        assert sorted(tuple(subset[k] for k in b) for b in per[r]) == sorted(tuple(b) for b in plan
                                                                          if set(b) <= set(subset))
    singles = unseen.aligned(sp, [[i] for i in range(len(durs))])  # one utterance at a time: aligned too
    assert [sum(len(b) for b in bs) for bs in singles] == [len(s) for s in sp.subsets]
    assert unseen.aligned(sp, plan_batches(durs, 3)) is None  # batches of 3 straddle the held-out pairs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):  # noqa: ANN001, ANN201
    """The same tiny run twice: held-out transcripts reused (as shipped) and not (the whole accuracy pass)."""
    root = tmp_path_factory.mktemp("unseen-batches")
    model = save_tiny_model(root / "tiny", layers=1)
    data = shared_tiny_corpus(tmp_path_factory)
    out: dict[str, dict] = {}
    for name in ("reuse", "whole", "cached"):
        calls: list[tuple[int, int]] = []
        untimed: list[int] = []
        real = runner.run_pass

        def spy(tr, wl, scenario, **kw):  # noqa: ANN001, ANN202
            res = real(tr, wl, scenario, **kw)
            if kw.get("keep_hyps") and len(wl) == 8:  # the accuracy pass (unseen repeats run a subset)
                calls.append((len(wl), res.n_utts))
            elif len(wl) == 8:  # the warm pass of a cached accuracy, the warm repeats
                untimed.append(res.n_utts)
            return res

        mp = pytest.MonkeyPatch()
        request.addfinalizer(mp.undo)
        mp.setattr(runner, "run_pass", spy)
        if name == "whole":
            mp.setattr(accuracy, "reusable_hyps", lambda entry: {})
        cfg = RunConfig(out=str(root / name), models=[str(model)], data=str(data), repeats=2, warmup=1, batch_size=2,
                        energy="none", overhead_pairs=0, variant_memory="off", scenarios=["batched", "unseen"],
                        fresh=name != "cached")  # "cached": the accuracy from the cache the first run filled
        summary = runner.run_benchmark(cfg, load_variant, progress=False)
        mp.undo()
        out[name] = {"dir": Path(cfg.out), "calls": calls, "untimed": untimed, "summary": summary}
    return out


def test_accuracy_pass_runs_only_what_the_unseen_repeats_did_not(runs) -> None:  # noqa: ANN001
    assert runs["whole"]["calls"] == [(8, 8)]
    (n_wl, n_run), = runs["reuse"]["calls"]
    assert n_wl == 8 and n_run == 4  # 2 of the 4 batches of 2 were held out, one per repeat


def test_reused_transcripts_are_the_whole_passes(runs) -> None:  # noqa: ANN001
    files = {name: sorted((r["dir"] / "hyps").glob("*.tsv")) for name, r in runs.items()}
    assert len(files["reuse"]) == len(files["whole"]) == 1
    reuse, whole = (files[n][0].read_text() for n in ("reuse", "whole"))
    assert reuse == whole and len(reuse.splitlines()) == 9  # header + 8 utterances, each the same transcript


def test_a_cached_accuracy_warms_up_only_what_the_unseen_repeats_did_not_run(runs) -> None:  # noqa: ANN001
    assert runs["cached"]["calls"] == []  # no accuracy pass: the cache had it
    assert runs["cached"]["untimed"] == [4, 8, 8]  # warm pass over the batches not held out, then the 2 repeats
    assert runs["whole"]["untimed"] == [8, 8]  # no warm pass after an accuracy pass; the 2 warm repeats


def test_held_out_batches_are_dealt_for_equal_audio() -> None:
    """Batches of very different lengths: each repeat gets about the same audio, not the luck of the shuffle."""
    durs = [float(d) for d in (1, 1.1, 2, 2.1, 4, 4.1, 8, 8.1, 16, 16.1, 32, 32.1, 64, 64.1, 99)]
    plan = plan_batches(durs, 2)
    for seed in range(6):
        sp = unseen.split_batches(plan, durs, repeats=2, share=0.9, seed=seed)
        audio = sorted(sum(durs[i] for i in s) for s in sp.subsets)
        assert audio[1] - audio[0] <= 2.1 + 1e-9, (seed, audio)  # at most the shortest batch apart
