"""The accuracy step of a run: WER/CER of a variant x device from the run folder, the accuracy cache or a pass.

The accuracy pass is also the warm scenario's first pass over every padded shape (``batched`` times lengths
already run), so on a cache hit the same pass still runs, untimed and unscored, when warm repeats follow; what a hit
saves is the scoring and, when no warm repeat follows (``--scenarios unseen``), the whole pass.  Batches that the
unseen repeats ran exactly as this pass would (bench/unseen.py, ``aligned``) are not run again: their transcripts
are those repeats', so every utterance is transcribed once.
"""
from __future__ import annotations

import logging
from typing import Any

from bench import accuracy_cache, meta
from bench.trackers import energy_window
from core.device import Device

log = logging.getLogger(__name__)


def accuracy_pass(run: Any, entry: Any, dev: str) -> dict[str, Any] | None:
    """WER/CER over the whole workload, once per variant x device (not for random weights): from the run folder
    (resume), else the accuracy cache, else an accuracy pass (whose result the cache then keeps).  ``run`` is the
    runner's state (bench/runner.py)."""
    from bench.trackers import Readings
    from core.provenance import now_iso
    from core.scoring import score

    job, tr, wl = entry.job, entry.tr, entry.wl
    acc_key = run.key(job, dev, -1, "accuracy")
    acc = run.ctx.broadcast(run.store.get_pass(acc_key) if run.store else None)
    if wl.references is None or acc is not None:
        entry.accuracy_source = (acc or {}).get("source", "measured") if acc is not None else ""
        return acc
    ckey, key_parts = _cache_key(run, entry, dev)
    cached = accuracy_cache.load(ckey) if ckey and not run.cfg.fresh else None
    if run.ctx.broadcast(cached is not None):
        return _from_cache(run, entry, dev, acc_key, cached)
    held = reusable_hyps(entry)
    log.info("accuracy pass: %s on %s, %d utterances%s", job.variant, dev, len(entry.wl_full),
             f" ({len(held)} transcribed by the unseen repeats)" if held else "")
    batches = [b for b in job.scenario.plan(tr, wl.durations) if not all(i in held for i in b)] if held else None
    readings = Readings()
    with energy_window(run.meters[dev], f"accuracy|{job.variant}|{dev}", readings):
        res, _ = run.pass_(entry, wl, keep_hyps=True, batches=batches)
    entry.full_pass = True  # with the unseen repeats' batches, this process has run the whole plan
    res.hyps = [held.get(i, h) for i, h in enumerate(res.hyps)]
    parts = run.ctx.gather((wl.utt_ids, wl.references, res.hyps, res.wall_s, readings.energy))
    if run.main:
        ids = [i for p in parts for i in p[0]]
        refs = [r for p in parts for r in p[1]]
        hyps = [h for p in parts for h in p[2]]
        sc = score(refs, hyps)
        joules = [p[4].joules for p in parts if p[4].joules_by_component]
        acc = {"wer": sc.wer, "cer": sc.cer, "n_utts": sc.n_utts, "ref_words": sc.ref_words,
               "wall_s": max(p[3] for p in parts), "batch_size": tr.batch_size,
               "energy_j": sum(joules) if joules else None, "energy_method": readings.energy.method,
               "source": "measured", "utts_from_unseen": len(held)}
        run.store.put_pass(acc_key, "accuracy", job.variant, dev, acc, now_iso())
        meta.save_hyps(run.run_dir, job.variant, dev, ids, refs, hyps)
        log.info("%s on %s: WER %.2f %%, CER %.2f %%", job.variant, dev, 100 * sc.wer, 100 * sc.cer)
        if ckey:
            accuracy_cache.save(ckey, key_parts, acc, ids, refs, hyps,
                                {"run_id": run.run_id, "run_dir": str(run.run_dir.resolve()), "at": now_iso()})
        run.meta.setdefault("accuracy_cache", {})[f"{job.variant}|{dev}"] = {
            "hit": False, "why": "--fresh" if run.cfg.fresh else "not in the cache", "key": ckey}
    entry.accuracy_source = "measured"
    return run.ctx.broadcast(acc)

def reusable_hyps(entry: Any) -> dict[int, str]:
    """The unseen repeats' transcripts when they cover every held-out utterance and were made in this variant's own
    plan batches (``entry.unseen_batches``); else {} (a resumed run, batches of another plan: the whole pass runs)."""
    sp = entry.unseen
    if sp is None or not entry.unseen_batches or len(entry.unseen_hyps) != sum(map(len, sp.subsets)):
        return {}
    return dict(entry.unseen_hyps)


def _cache_key(run: Any, entry: Any, dev: str) -> tuple[str, dict[str, Any]]:
    """The accuracy cache's key of this variant x device x workload (rank 0; "" elsewhere)."""
    if not run.main:
        return "", {}
    with run.phases("accuracy cache key"):
        digest = accuracy_cache.entry_hash(entry)
        parts = accuracy_cache.key_parts(digest, entry.tr, entry.wl_full, run.local_device(dev),
                                         Device.parse(dev).name(), run.ctx.world_size)
    return accuracy_cache.key_of(parts), parts

def _from_cache(run: Any, entry: Any, dev: str, acc_key: str, cached: dict[str, Any] | None
                         ) -> dict[str, Any]:
    """A cache hit: the WER of an earlier run of the same variant on the same data and software, its
    hypotheses written to RUN_DIR/hyps as if computed here, and the hit recorded (rows, meta.json)."""
    from core.provenance import now_iso

    job = entry.job
    acc = None
    if run.main:
        origin = cached.get("origin", {})
        acc = {**cached["accuracy"], "source": "cache", "cache_origin": origin}
        run.store.put_pass(acc_key, "accuracy", job.variant, dev, acc, now_iso())
        ids, refs, hyps = (list(x) for x in zip(*cached["utterances"])) if cached["utterances"] else ([],) * 3
        meta.save_hyps(run.run_dir, job.variant, dev, ids, refs, hyps)
        run.meta.setdefault("accuracy_cache", {})[f"{job.variant}|{dev}"] = {
            "hit": True, "computed_in": origin.get("run_id"), "computed_at": origin.get("at")}
        log.info("%s on %s: WER %.2f %%, CER %.2f %% (accuracy cache: computed in run %s; --fresh computes it "
                 "again)", job.variant, dev, 100 * acc["wer"], 100 * acc["cer"], origin.get("run_id"))
    entry.accuracy_source = "cache"
    if run.pending(job, dev):
        # the warm scenario times lengths already run: the pass the accuracy pass would have been still runs,
        # untimed and unscored, so that the timed repeats meet the same kernels as after a computed one
        held = reusable_hyps(entry)  # batches the unseen repeats ran in this process are warm already
        batches = [b for b in entry.timed_batches or job.scenario.plan(entry.tr, entry.wl.durations)
                   if not all(i in held for i in b)]
        with run.phases("warm pass (accuracy cached)"):
            run.pass_(entry, entry.wl, batches=batches)  # what the warm repeats will run
        entry.full_pass = True
    return run.ctx.broadcast(acc)

