"""The memory one variant's own pass needs (``variant_peak_mb``): weights + activations of its heaviest batch.

The timed repeats run with every variant resident, so the process's ``peak_rss_mb`` / ``cuda_max_alloc_mb`` are
the run's, not the variant's.  Here each variant x device is measured once, alone:

``child-vmhwm``              (CPU, the default) a child process (forked from a server that has imported the
                             libraries, :data:`PRELOAD`; spawned where there is none), with the parent's environment,
                             takes its RSS as the baseline, loads only this variant (a compiled one from the
                             persistent compile cache the parent's build filled), runs the heaviest batch once
                             (lazy initialisation), resets the high-water mark (/proc/self/clear_refs, as
                             ``bench.trackers.PeakRSS``), runs it again and reports VmHWM - baseline.
``child-maxrss``             as above where VmHWM cannot be reset (lifetime peak: includes loading's transients).
``child-cuda-max-alloc``     (GPU) in the child, torch.cuda.max_memory_allocated over the pass, the peak stats
                             reset after loading (the weights stay allocated, so they count), only this variant
                             on the device.
``inprocess-*-delta``        ``--variant-memory inprocess``, or when the loader does not pickle (a test's closure) or
                             the child fails: the same in the runner's process right after the load, as a delta over
                             what was resident before it, the C heap trimmed (``malloc_trim``) before the baseline and
                             between the two runs so freed heap counts again when touched; floored at the variant's
                             weight bytes (``-floored-at-weights``) where the delta is below them.

Why the child stays the default although it builds each variant a second time: in-process deltas are not the
variant alone.  Measured on 12 of the main job's variants (embedded dev-clean, 2 threads, heaviest batch
8 x 10.8 s), in-process in the runner's order against the children of a run of the same code: the first variant
+26 % (it pays the runtime's first-use pages, kernels and thread pools, and its load's transients), every later
one 22-68 % lower (those are resident already: distill-L2 290 vs 417 MB, bf16+front-end-bf16+compile-encoder 157
vs 398 MB).  A figure that depends on the order of the variants is not the variant's.  What the child costs is
paid once: the run folder keeps it for a resume, and the memory cache (:mod:`bench.accuracy_cache`,
``kind="memory"``, children's figures only) for a later run of the same variant content, data, device and
software, which then builds each variant once.

Why a fork server, and what its children do first: a spawned child imports the libraries itself, most of its
seconds; a child forked from a server that imported them once does not.  But fork copies no page-table entries for
the libraries' file-backed pages, so they would fault in while the variant loads and runs and count as its memory.
So the server lists its resident file-backed pages once (/proc/self/pagemap, :mod:`bench.child_preload`) and each
child touches them before its baseline, which then holds what a spawned child's holds after its imports.  The
figures of the two kinds of child agree within a spawned child's own spread for most variants, but not for the fp32
teacher, lower by 24-36 MB forked in every paired comparison so far, for a reason not yet found (the comparisons:
docs/runs/2026-12-07c-main-job-fork-server).

The heaviest batch is the batch plan's largest (longest padded audio x batch size), the one that sets the peak.
"""
from __future__ import annotations

import gc
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)


def heaviest_batch(plan: Sequence[Sequence[int]], durations: Sequence[float]) -> list[int]:
    """The batch with the most padded audio: longest utterance x batch size (ties: the first)."""
    if not plan:
        return []
    return list(max(plan, key=lambda b: max((durations[i] for i in b), default=0.0) * len(b)))


def make_transcriber(v: Any, device: str, batch_size: int, max_batch_seconds: float) -> Any:
    """A ``core.inference.Transcriber`` for a loaded variant, computing in its dtype (as the runner does)."""
    import torch

    from core.inference import Transcriber

    dtype = getattr(v, "dtype", None)
    return Transcriber(v.model, do_normalize=v.do_normalize, device=device, batch_size=batch_size,
                       max_batch_seconds=max_batch_seconds, dtype=None if dtype in (None, torch.float32) else dtype)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def _maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def _run_batch(tr: Any, audio: Sequence[Any]) -> None:
    import torch

    with torch.inference_mode():
        logits = tr.forward(tr.make_inputs(list(audio)))
    del logits


def trim_heap() -> bool:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``), so that memory an earlier variant
    freed is counted again when the next one touches it, instead of being reused out of sight of RSS."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def baseline(device: str, trim: bool = False) -> float:
    """What is resident before a variant is loaded: RSS (CPU; ``trim``: after the heap's free pages are given
    back, for an in-process delta) or CUDA bytes allocated (GPU), in MB."""
    import torch

    gc.collect()
    if trim:
        trim_heap()
    if device.startswith("cuda"):
        dev = torch.device(device)
        torch.cuda.synchronize(dev)
        return torch.cuda.memory_allocated(dev) / 1e6
    return _rss_mb()


def peak_over(tr: Any, audio: Sequence[Any], device: str, base_mb: float, prefix: str) -> dict[str, Any]:
    """Run the batch twice (the first initialises lazily), the peak of the second over ``base_mb``."""
    import torch

    delta = "-delta" if prefix == "inprocess" else ""
    if device.startswith("cuda"):
        dev = torch.device(device)
        _run_batch(tr, audio)  # cuDNN workspaces and other lazy allocations happen here
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)  # the weights stay allocated: they count in the peak
        _run_batch(tr, audio)
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) / 1e6
        return {"variant_peak_mb": peak - base_mb, "variant_peak_method": f"{prefix}-cuda-max-alloc{delta}",
                "baseline_mb": base_mb}
    _run_batch(tr, audio)
    gc.collect()
    if prefix == "inprocess":
        trim_heap()  # the first batch's freed activations must not be reused unseen by the second
    resettable = _reset_hwm()
    _run_batch(tr, audio)
    hwm = _hwm_mb() if resettable else None
    how = "vmhwm" if hwm is not None else "maxrss"
    peak = max(hwm if hwm is not None else _maxrss_mb(), _rss_mb())
    method, value = f"{prefix}-{how}{delta}", peak - base_mb
    if prefix == "inprocess":
        # Freed heap of earlier variants is reused without raising RSS, so the delta can even be negative; the
        # weights are resident whatever the allocator did, so they are the floor of this lower bound.
        from core.model_stats import memory_bytes

        weights_mb = memory_bytes(tr.model) / 1e6 if hasattr(tr.model, "named_buffers") else 0.0
        if value < weights_mb:
            method, value = f"{method}-floored-at-weights", weights_mb
    return {"variant_peak_mb": value, "variant_peak_method": method, "baseline_mb": base_mb}


def _child(loader: Callable[[str, str], Any], spec: str, device: str, audio: Sequence[Any], batch_size: int,
           max_batch_seconds: float, threads: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs in the child: only this variant in the process (and on its device)."""
    if env is not None:  # the parent's environment now (caches, run log), not the fork server's at its start
        os.environ.clear()
        os.environ.update(env)
    from core import console

    console.setup(child=True)  # the parent's console rules; its records join the run log
    import torch

    torch.set_num_threads(threads)  # the parent's intra-op threads: activations' scratch depends on them
    from bench import child_preload  # the libraries, their pages in the baseline, not in the variant's figure

    child_preload.touch_resident()  # forked: the server's resident pages mapped here too; spawned: mapped already
    if device.startswith("cuda"):
        torch.cuda.init()  # the CUDA context is not an allocation, but create it before the baseline
    base = baseline(device)
    tr = make_transcriber(loader(spec, device), device, batch_size, max_batch_seconds)
    return peak_over(tr, audio, device, base, "child")


def picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception:  # noqa: BLE001 - closures, lambdas, local classes
        return False


# What every child imports before its baseline, imported once by the fork server (bench/child_preload.py), so a child
# starts with them instead of importing them again.  Only imports: no torch thread pool or CUDA context exists in the
# server, so forking it is safe.  The server keeps the environment it started with; each child takes the parent's of
# the moment (_child's ``env``).
PRELOAD = ("bench.child_preload", "bench.memory")
CHILD_PRELOAD_ENV = "W2V_FOOTPRINT_CHILD_PRELOAD"  # the loader's own modules, for bench.child_preload to import


def loader_preload(loader: Any) -> tuple[str, ...]:
    """The modules every build by ``loader`` imports (its ``preload`` attribute, set by the command layer; the
    runner's MeteredLoader wraps it): the fork server imports them once, before it lists its resident pages."""
    inner = getattr(loader, "loader", loader)
    return tuple(getattr(inner, "preload", ()) or ())


def _child_context(device: str, preload: Sequence[str] = ()) -> Any:
    """Children forked from a fork server that has the libraries imported (CPU), ``preload`` too; spawned where
    there is no fork server, and for a GPU (a CUDA context is made in the child, never near a fork)."""
    import multiprocessing as mp

    if device.startswith("cuda") or "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    if preload:  # read by bench.child_preload when the server starts (the first child), from this environment
        os.environ[CHILD_PRELOAD_ENV] = ",".join(preload)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))  # takes effect when the server starts (the first child)
    return ctx


def measure_in_child(loader: Callable[[str, str], Any], spec: str, device: str, audio: Sequence[Any],
                     batch_size: int, max_batch_seconds: float, threads: int, timeout_s: float = 1800.0
                     ) -> dict[str, Any]:
    """``variant_peak_mb`` from a fresh child process that loads only this variant (raises on failure)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=_child_context(device, loader_preload(loader))) as ex:
        fut = ex.submit(_child, loader, spec, device, list(audio), batch_size, max_batch_seconds, threads,
                        dict(os.environ))
        return fut.result(timeout=timeout_s)


def measure_variant(loader: Callable[[str, str], Any], spec: str, device: str, audio: Sequence[Any],
                    batch_size: int, max_batch_seconds: float, threads: int, loaded_tr: Any = None,
                    base_mb: float = float("nan"), mode: str = "auto") -> dict[str, Any]:
    """``{"variant_peak_mb", "variant_peak_method", ...}``: in a child when ``mode`` allows and the loader
    pickles, else in this process on ``loaded_tr`` (the runner's Transcriber) over ``base_mb``, the
    :func:`baseline` taken just before it was loaded."""
    reason = ""
    if mode in ("auto", "child"):
        if picklable(loader):
            try:
                return measure_in_child(loader, spec, device, audio, batch_size, max_batch_seconds, threads)
            except Exception as exc:  # noqa: BLE001 - a child that cannot start must not stop the run
                reason = " ".join(f"child process failed: {type(exc).__name__}: {exc}".split())[:300]
                log.warning("%s on %s: variant memory %s; measuring in this process", spec, device, reason)
        else:
            reason = "loader does not pickle (not a module-level function)"
    if loaded_tr is None or base_mb != base_mb:
        return {"variant_peak_mb": float("nan"), "variant_peak_method": "not measured", "reason": reason}
    out = peak_over(loaded_tr, audio, device, base_mb, "inprocess")
    if reason:
        out["reason"] = reason
    return out


def default_threads() -> int:
    import torch

    return torch.get_num_threads() or (os.cpu_count() or 1)


def for_run(run: Any, entry: Any, dev: str) -> dict[str, Any]:
    """variant_peak_mb once per variant x device of a run (``run``: the runner's state), saved in the passes table:
    a resumed run reuses it.  The heaviest batch holds the longest utterance, which bench.unseen never holds out."""
    from bench import accuracy_cache
    from core.provenance import now_iso

    job = entry.job
    mkey = f"{run.chash}|memory|{job.variant}|{dev}"
    saved = run.ctx.broadcast(run.store.get_pass(mkey) if run.store else None)
    if saved is not None:
        return saved
    if run.cfg.variant_memory == "off":
        return {"variant_peak_mb": float("nan"), "variant_peak_method": "not measured (--variant-memory off)"}
    out = None
    if run.main:
        wl = entry.wl
        idx = heaviest_batch(job.scenario.plan(entry.tr, wl.durations), wl.durations)
        ckey, parts = _cache_key(run, entry, dev, idx)
        cached = accuracy_cache.load(ckey, "memory") if ckey and not run.cfg.fresh else None
        if cached is not None:
            out = {**cached["memory"], "cache_origin": cached.get("origin", {})}
        else:
            audio = [entry.audio_cache[i] for i in idx] if entry.audio_cache is not None else \
                [wl.loader(i) for i in idx]
            out = measure_variant(run.loader, job.spec, run.local_device(dev), audio, job.batch_size,
                                  run.cfg.max_batch_seconds, default_threads(), loaded_tr=entry.tr,
                                  base_mb=entry.base_mb, mode=run.cfg.variant_memory)
            out.update(batch_utts=len(idx), batch_longest_s=max((wl.durations[i] for i in idx), default=0.0))
            # only a child's figure is the variant's alone; an in-process delta depends on what ran before it
            if ckey and str(out.get("variant_peak_method", "")).startswith("child"):
                accuracy_cache.save(ckey, parts, out, [], [], [], {"run_id": run.run_id, "at": now_iso()}, "memory")
        run.meta.setdefault("memory_cache", {})[f"{job.variant}|{dev}"] = {
            "hit": cached is not None, "computed_in": (out.get("cache_origin") or {}).get("run_id", run.run_id)}
        log.info("%s on %s: variant peak memory %.1f MB (%s; heaviest batch: %d x %.1f s)%s", job.variant, dev,
                 out["variant_peak_mb"], out["variant_peak_method"], out["batch_utts"], out["batch_longest_s"],
                 " from the memory cache (--fresh measures it again)" if cached is not None else "")
        if run.store:
            run.store.put_pass(mkey, "memory", job.variant, dev, out, now_iso())
    return run.ctx.broadcast(out)


def _cache_key(run: Any, entry: Any, dev: str, idx: Sequence[int]) -> tuple[str, dict[str, Any]]:
    """The memory cache's key (bench/accuracy_cache.py's, plus the heaviest batch's lengths and the method)."""
    from bench import accuracy_cache
    from core.device import Device

    if entry.variant is None:
        return "", {}
    digest = accuracy_cache.entry_hash(entry)
    parts = accuracy_cache.key_parts(digest, entry.tr, entry.wl_full, run.local_device(dev), Device.parse(dev).name(),
                                     run.ctx.world_size)
    parts["memory"] = {"batch_samples": [round(entry.wl.durations[i] * 16000) for i in idx],
                       "mode": run.cfg.variant_memory}
    return accuracy_cache.key_of(parts), parts
