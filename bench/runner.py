"""The benchmark runner: variants x devices over a workload into one tidy table (``core.results``).

For each variant x device:
  1. an accuracy pass over every utterance (WER, CER; hypotheses saved under RUN_DIR/hyps/);
  2. warm-up batches (timed and kept in the ``passes`` table, never in the rows);
  3. N timed repeats over the same utterances, variants interleaved (and their order rotated) between
     repeats so that machine drift hits all alike; each repeat is one row, committed as it completes.

Timing inside a repeat (``time.perf_counter``; on CUDA after ``torch.cuda.synchronize`` and with CUDA
events beside it): ``decode_s`` audio file decoding, ``inputs_s`` normalisation/padding/copy, ``model_s`` the
forward pass only, ``text_s`` CTC decoding; ``e2e_s`` = their sum, ``wall_s`` the whole repeat.  RTFx =
audio seconds / model seconds (model only, as the Open ASR leaderboard); the paper's end-to-end batch-1
loop (``--paper-loop``) is timed as its own scenario, with file decoding inside the loop.

Energy: one window per repeat around the whole repeat, from the first meter of the fallback chain that
works here (``bench.energy``); an optional idle baseline is subtracted; the trackers' own overhead is
measured by timing the same work with and without a window.  Rerunning the same command resumes.

Parts: the scenarios and a pass over a workload in ``bench.scenarios``, the per-repeat trackers in
``bench.trackers``, the overhead check in ``bench.overhead``, the row (``core.schema.Row``) in ``bench.rows``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from bench import memory, scenarios
from bench.overhead import measure_overhead
from bench.rows import build_row
from bench.scenarios import PAPER_LOOP_SUFFIX, PassResult, Scenario, run_pass  # noqa: F401 (re-exported)
from bench.trackers import PeakRSS, energy_window, track_repeat
from core.device import Device, check_devices
from core.errors import FootprintError

log = logging.getLogger(__name__)

ROW_PAUSE_ENV = "FOOTPRINT_ROW_PAUSE_S"  # test hook: sleep after each committed row (kill-and-resume test)
# oneDNN keeps the kernels it builds for each shape in one process-wide LRU cache of 1024 by default; the interleaved
# variants of a run evicted each other's, so a variant paid the rebuilding in every repeat that followed another
# (measured: teacher + front-end-bf16+int8-inductor-bf16, 2 repeats, the int8 chain 4.58 s after the teacher and
# 3.31 s after itself; with 16384 entries 3.16, 3.16, 3.17 s in 3 repeats).  A served model would run warm.
ONEDNN_CACHE_ENV, ONEDNN_CACHE_CAPACITY = "ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384"


# ---------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------
@dataclass
class RunConfig:
    out: str = "runs/bench"
    models: list[str] = field(default_factory=lambda: ["embedded"])
    data: str = "embedded:dev-clean"
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    repeats: int = 3
    warmup: int = 1                      # warm-up batches per variant x device before the first repeat
    threads: int | None = None           # torch intra-op threads (None: torch's default)
    batch_size: int = 8
    max_batch_seconds: float = 240.0
    limit: int | None = None             # first N utterances (id order) of the data
    energy: str = "auto"                 # fallback chain, e.g. "codecarbon,carbontracker,none"
    carbon_intensity: float | None = None
    country: str | None = None
    # None: 10 s when the meter reads a hardware counter, none for estimates (bench.energy.default_idle_baseline)
    idle_baseline_s: float | None = None
    arch: list[str] = field(default_factory=list)   # "large", "base", "embedded": random-weight timing
    layers: list[int] = field(default_factory=list)
    arch_fraction: float | None = None   # of the dev-clean-shaped workload; default 0.01 on CPU, 1 on CUDA
    paper_loop: bool = False             # also time the paper's batch-1 loop incl. file decoding
    overhead_pairs: int = 2              # with/without-tracker pairs for the overhead check (0: skip)
    seed: int = 0
    # variant_peak_mb: "auto" (a child process per variant x device when the loader pickles, else in this
    # process), "child", "inprocess" or "off"
    variant_memory: str = "auto"

    def jobs(self) -> list["Job"]:
        jobs: list[Job] = []
        seen: set[str] = set()

        def add(job: Job) -> None:
            name, n = job.variant, 2
            while job.variant in seen:  # two directories with the same basename
                job.variant = f"{name}-{n}"
                n += 1
            seen.add(job.variant)
            jobs.append(job)

        for spec in self.models:
            add(Job(variant=_spec_name(spec), spec=spec, scenario=scenarios.for_spec(spec),
                    batch_size=self.batch_size))
        for arch in self.arch:
            for n in self.layers or [None]:
                spec = f"arch-{arch}" + (f"-L{n}" if n else "")
                if spec not in self.models:
                    add(Job(variant=spec, spec=spec, scenario=scenarios.ARCH, batch_size=self.batch_size))
        if self.paper_loop:
            for j in list(jobs):
                if j.scenario is scenarios.BATCHED:
                    add(Job(variant=j.variant + PAPER_LOOP_SUFFIX, spec=j.spec, scenario=scenarios.PAPER_LOOP,
                            batch_size=1))
        return jobs

    def hash_payload(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("out")
        if d.get("variant_memory") == "auto":
            d.pop("variant_memory")  # the default keeps the hashes (and resumes) of runs from before it existed
        return d


def _spec_name(spec: str) -> str:
    p = Path(spec).expanduser()
    if p.is_dir():
        return p.resolve().name
    return spec


@dataclass
class Job:
    variant: str        # the row's ``variant``: the spec's name (directory basename), +@paper-loop
    spec: str
    scenario: Scenario
    batch_size: int

    @property
    def weights(self) -> str:
        return self.scenario.weights

    def as_meta(self) -> dict[str, Any]:
        return {"variant": self.variant, "spec": self.spec, "scenario": self.scenario.name,
                "batch_size": self.batch_size}


Loader = Callable[[str, str], Any]  # (spec, device) -> core.variant.Variant; the command layer passes compress's


@dataclass
class Loaded:
    """A variant loaded on one device, ready to time, with what the rows need to know about it."""

    job: Job
    tr: Any                     # core.inference.Transcriber
    wl: Any                     # this rank's shard of wl_full
    wl_full: Any
    info: dict[str, Any]
    recipe: str
    model_path: str
    load_s: float
    audio_cache: list | None = None  # generated audio, shared by every variant on the device
    acc: dict[str, Any] = field(default_factory=dict)
    base_mb: float = float("nan")  # memory resident just before the load (in-process variant_peak_mb baseline)
    memory: dict[str, Any] = field(default_factory=dict)  # variant_peak_mb, variant_peak_method (bench.memory)


@dataclass
class RunSummary:
    run_dir: Path
    run_id: str
    rows_written: int
    rows_skipped: int
    meta: dict[str, Any]


def config_hash(cfg: RunConfig, manifest_hash: str) -> str:
    payload = json.dumps({"config": cfg.hash_payload(), "manifest": manifest_hash}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------
def run_benchmark(cfg: RunConfig, loader: Loader, progress: bool = True,
                  argv: Sequence[str] | None = None) -> RunSummary:
    """Run (or resume) the benchmark described by ``cfg`` into ``cfg.out``; see the module docstring.

    Meters, the results store and the process group are closed however the run ends.
    """
    import torch

    from core.distributed import init_from_env

    if cfg.repeats < 1:
        raise FootprintError(f"--repeats {cfg.repeats}: need at least 1")
    # read by oneDNN when it builds its first kernel, so before any variant is built (a value set by the user stays)
    os.environ.setdefault(ONEDNN_CACHE_ENV, ONEDNN_CACHE_CAPACITY)
    check_devices(cfg.devices)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    jobs = cfg.jobs()
    if not jobs:
        raise FootprintError("nothing to run: give --models and/or --arch")
    ctx = init_from_env(cfg.devices)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(ctx.close)
        run = _Run(cfg, loader, ctx, jobs, progress)
        run.prepare_workloads()
        run.open_folder(argv, cleanup)
        run.open_meters(cleanup)
        run.load_variants()
        run.measure_tracker_overhead()
        written = run.timed_repeats()
        return run.finish(written)


class _Run:
    """The steps of one run_benchmark call and the state they share."""

    def __init__(self, cfg: RunConfig, loader: Loader, ctx: Any, jobs: list[Job], progress: bool) -> None:
        self.cfg, self.loader, self.ctx, self.jobs = cfg, loader, ctx, jobs
        self.main = ctx.is_main
        self.run_dir = Path(cfg.out)
        self.pbar_opts = dict(disable=not (progress and self.main), dynamic_ncols=True)
        self.store: Any = None
        self.meta: dict[str, Any] = {}
        self.done: set[str] = set()
        self.meters: dict[str, Any] = {}
        self.idle_w: dict[str, dict[str, float]] = {}
        self.idle_s: dict[str, float] = {}
        self.idle_why: dict[str, str] = {}
        self.loaded: dict[tuple[str, str], Loaded] = {}
        self.audio_caches: dict[int, list] = {}
        self.overhead: dict[str, float] = {}
        self.rows_skipped = 0

    # -- keys ----------------------------------------------------------------------------------------------
    def key(self, job: Job, dev: str, rep: int, pass_: str = "perf") -> str:
        from core.results import row_key

        return row_key(self.chash, job.variant, dev, rep, pass_)

    def pending(self, job: Job, dev: str) -> list[int]:
        return [r for r in range(self.cfg.repeats) if self.key(job, dev, r) not in self.done]

    def local_device(self, dev: str) -> str:
        return str(Device.parse(dev).for_local_rank(self.ctx.local_rank, self.ctx.active))

    def write_meta(self) -> None:
        from core.results import write_meta

        if self.main:
            write_meta(self.run_dir, self.meta)

    # -- steps ---------------------------------------------------------------------------------------------
    def prepare_workloads(self) -> None:
        """The data workload (if a job uses data) and, per device, the generated one (if a job is arch)."""
        from bench.workload import arch_workload, from_manifest

        cfg = self.cfg
        self.data_wl = None
        if any(j.scenario.uses_data for j in self.jobs):
            from core.data import resolve_data
            from core.data.librispeech import read_subset

            self.data_wl = from_manifest(read_subset(resolve_data(cfg.data)), cfg.data, cfg.limit)
            if not len(self.data_wl):
                raise FootprintError(f"{cfg.data}: no usable utterances")
        self.arch_wls: dict[str, Any] = {}
        if any(not j.scenario.uses_data for j in self.jobs):
            for dev in cfg.devices:
                frac = scenarios.arch_fraction(cfg.arch_fraction, Device.parse(dev).is_cuda)
                self.arch_wls[dev] = arch_workload(frac, cfg.seed)
        self.manifest_hash = self.data_wl.manifest_hash if self.data_wl else ""
        self.chash = config_hash(cfg, self.manifest_hash)

    def open_folder(self, argv: Sequence[str] | None, cleanup: contextlib.ExitStack) -> None:
        """The run folder: refuse another configuration's, open the store, know what is done (resume)."""
        from bench.energy.carbon import resolve_intensity
        from core import provenance, results

        problem = None
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.meta = results.read_meta(self.run_dir)
            if self.meta and self.meta.get("config_hash") not in (None, self.chash):
                problem = (f"{self.run_dir / results.META_NAME}: this folder holds a run with another configuration "
                           f"(config hash {self.meta.get('config_hash')} != {self.chash}); use another --out")
        problem = self.ctx.broadcast(problem)  # every rank stops, not only rank 0 (the others would wait forever)
        if problem:
            raise FootprintError(problem)
        if self.main:
            self.store = results.ResultsStore(self.run_dir)
            cleanup.callback(self.store.close)
            self.done = self.store.done_keys()
            self._start_meta(argv, provenance.collect())
        self.done = self.ctx.broadcast(self.done)
        self.run_id = self.ctx.broadcast(self.meta.get("run_id"))
        self.prov = provenance.collect()
        self.intensity = resolve_intensity(self.cfg.carbon_intensity, self.cfg.country)
        self.rows_skipped = sum(1 for j in self.jobs for d in self.cfg.devices for r in range(self.cfg.repeats)
                                if self.key(j, d, r) in self.done)
        if self.rows_skipped and self.main:
            log.info("resuming %s: %d finished row(s) kept and skipped", self.run_dir, self.rows_skipped)

    def _start_meta(self, argv: Sequence[str] | None, prov: Any) -> None:
        import torch

        from core import provenance, results

        cfg, data_wl = self.cfg, self.data_wl
        if not self.meta:
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            self.meta = {"run_id": f"{stamp}-{self.chash[:8]}", "schema_version": results.SCHEMA_VERSION,
                         "config_hash": self.chash, "created": provenance.now_iso()}
        self.meta.update({
            "command": _command(argv),
            "config": asdict(cfg), "data": cfg.data, "dataset": cfg.data, "manifest_hash": self.manifest_hash,
            "n_utts": len(data_wl) if data_wl else 0, "audio_s": data_wl.audio_s if data_wl else 0.0,
            "devices": cfg.devices, "repeats": cfg.repeats, "warmup": cfg.warmup, "batch_size": cfg.batch_size,
            "threads": torch.get_num_threads(), "onednn_primitive_cache": os.environ.get(ONEDNN_CACHE_ENV),
            "arch_fraction": {d: w.fraction for d, w in self.arch_wls.items()},
            "world_size": self.ctx.world_size, "provenance": prov.as_dict(),
            "jobs": [j.as_meta() for j in self.jobs], "timing": TIMING_NOTES,
        })
        self.meta.setdefault("attempts", []).append(provenance.now_iso())
        self.meta.setdefault("skipped", [])
        self.write_meta()

    def open_meters(self, cleanup: contextlib.ExitStack) -> None:
        """One energy meter per device (closed by ``cleanup``), and its idle baseline when asked for."""
        from bench import energy

        for dev in self.cfg.devices:
            chain = energy.parse_chain(self.cfg.energy, dev)
            m = energy.open_meter(chain, self.local_device(dev), country_iso3=self.intensity.country_iso3,
                                  carbon_intensity=self.intensity.g_per_kwh,
                                  log_dir=str(self.run_dir / "carbontracker") if self.main else None)
            cleanup.callback(m.close)
            self.meters[dev] = m
            seconds, why = energy.default_idle_baseline(m)
            if self.cfg.idle_baseline_s is not None:  # --idle-baseline-s overrides the default
                seconds = self.cfg.idle_baseline_s if m.name != "none" else 0.0
                why = f"idle baseline {seconds:g} s (--idle-baseline-s)" if seconds > 0 else \
                    f"no idle baseline (--idle-baseline-s {self.cfg.idle_baseline_s:g})"
            self.idle_why[dev] = why
            if seconds > 0:
                watts = self._idle_baseline(dev, m, seconds)["watts"]
                if watts:
                    self.idle_w[dev], self.idle_s[dev] = watts, seconds
                else:
                    self.idle_why[dev] = energy.NO_IDLE_FOR_ESTIMATES  # no measured component to subtract from
        if self.main:
            self.meta["energy"] = {d: {"method": m.name, "measured": bool(m.measured), "detail": m.describe(),
                                       "scope": m.scope, "has_counter": bool(m.has_counter),
                                       "fallbacks": getattr(m, "fallback_reasons", [])}
                                   for d, m in self.meters.items()}
            self.meta["energy"]["idle_baseline"] = {
                d: {"watts": self.idle_w.get(d, {}), "seconds": self.idle_s.get(d, 0.0), "why": self.idle_why[d]}
                for d in self.meters}
            self.meta["carbon_intensity"] = {"g_per_kwh": self.intensity.g_per_kwh, "source": self.intensity.source}
            self.write_meta()

    def _idle_baseline(self, dev: str, m: Any, seconds: float) -> dict[str, Any]:
        from bench import energy
        from core.provenance import now_iso

        ikey = f"{self.chash}|idle|{dev}|rank{self.ctx.rank}"
        saved = self.store.get_pass(ikey) if self.store else None
        if saved is None:
            log.info("idle baseline on %s: %.0f s of %s with nothing running", dev, seconds, m.name)
            watts = energy.measure_idle(m, seconds)
            saved = {"watts": watts, "seconds": seconds, "method": m.name}
            if self.store:
                self.store.put_pass(ikey, "idle", "", dev, saved, now_iso())
        return saved

    def load_variants(self) -> None:
        """Load each job still to do on each device; its accuracy pass (once) and warm-up batches."""
        for dev in self.cfg.devices:
            for job in self.jobs:
                acc_done = self.store is None or not job.scenario.uses_data \
                    or self.store.get_pass(self.key(job, dev, -1, "accuracy")) is not None
                if not self.pending(job, dev) and acc_done:
                    continue
                entry = self._load(job, dev)
                if entry is None:
                    continue
                self.loaded[(job.variant, dev)] = entry
                if self.pending(job, dev):  # before the accuracy pass: less garbage for an in-process fallback
                    entry.memory = self._variant_memory(entry, dev)
                entry.acc = self._accuracy(entry, dev) or {}
                if self.pending(job, dev) and self.cfg.warmup > 0:
                    self._warmup(entry, dev)

    def _load(self, job: Job, dev: str) -> Loaded | None:
        """The variant on this device as a Transcriber, or None (logged, recorded in meta) if it cannot load."""
        from core.model_stats import model_stats

        local_dev = self.local_device(dev)
        try:
            base_mb = memory.baseline(local_dev) if self.cfg.variant_memory != "off" else float("nan")
            t0 = time.perf_counter()
            v = self.loader(job.spec, local_dev)
            tr = memory.make_transcriber(v, local_dev, job.batch_size, self.cfg.max_batch_seconds)
            load_s = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - one variant failing on one device must not stop the run
            if isinstance(exc, FootprintError) and len(self.cfg.devices) == 1 and len(self.jobs) == 1:
                raise
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            log.warning("%s on %s: cannot load, skipped (%s)", job.variant, dev, reason)
            if self.main:
                self.meta["skipped"].append({"variant": job.variant, "device": dev, "reason": reason})
                self.write_meta()
            return None
        info = dict(getattr(v, "info", {}) or {})
        if any(info.get(k) is None for k in ("params", "size_mb", "sparsity", "conv_layers", "transformer_layers")):
            info = {**model_stats(tr.model), **{k: x for k, x in info.items() if x is not None}}
        spec_dir = Path(job.spec).expanduser()
        wl_full = job.scenario.workload(self.data_wl, self.arch_wls, dev)
        wl = wl_full.shard(self.ctx.rank, self.ctx.world_size)
        entry = Loaded(job=job, tr=tr, wl=wl, wl_full=wl_full, info=info, recipe=getattr(v, "recipe", job.spec),
                       model_path=getattr(v, "path", None) or (str(spec_dir.resolve()) if spec_dir.is_dir() else ""),
                       load_s=load_s, base_mb=base_mb)
        if not wl.from_files:  # generated audio, shared by every variant on this device (GBs at full size)
            if id(wl_full) not in self.audio_caches:
                self.audio_caches[id(wl_full)] = [wl.loader(i) for i in range(len(wl))]
            entry.audio_cache = self.audio_caches[id(wl_full)]
        return entry

    def _variant_memory(self, entry: Loaded, dev: str) -> dict[str, Any]:
        """variant_peak_mb once per variant x device (saved in the passes table: a resumed run reuses it)."""
        from core.provenance import now_iso

        job = entry.job
        mkey = f"{self.chash}|memory|{job.variant}|{dev}"
        saved = self.ctx.broadcast(self.store.get_pass(mkey) if self.store else None)
        if saved is not None:
            return saved
        if self.cfg.variant_memory == "off":
            return {"variant_peak_mb": float("nan"), "variant_peak_method": "not measured (--variant-memory off)"}
        out = None
        if self.main:
            wl = entry.wl
            idx = memory.heaviest_batch(job.scenario.plan(entry.tr, wl.durations), wl.durations)
            audio = [entry.audio_cache[i] for i in idx] if entry.audio_cache is not None else [wl.loader(i)
                                                                                               for i in idx]
            out = memory.measure_variant(self.loader, job.spec, self.local_device(dev), audio, job.batch_size,
                                         self.cfg.max_batch_seconds, memory.default_threads(),
                                         loaded_tr=entry.tr, base_mb=entry.base_mb,
                                         mode=self.cfg.variant_memory)
            out.update(batch_utts=len(idx), batch_longest_s=max((wl.durations[i] for i in idx), default=0.0))
            log.info("%s on %s: variant peak memory %.1f MB (%s; heaviest batch: %d x %.1f s)", job.variant, dev,
                     out["variant_peak_mb"], out["variant_peak_method"], out["batch_utts"], out["batch_longest_s"])
            if self.store:
                self.store.put_pass(mkey, "memory", job.variant, dev, out, now_iso())
        return self.ctx.broadcast(out)

    def _accuracy(self, entry: Loaded, dev: str) -> dict[str, Any] | None:
        """WER/CER over the whole workload, once per variant x device (not for random weights)."""
        from bench.trackers import Readings
        from core.provenance import now_iso
        from core.scoring import score

        job, tr, wl = entry.job, entry.tr, entry.wl
        acc_key = self.key(job, dev, -1, "accuracy")
        acc = self.ctx.broadcast(self.store.get_pass(acc_key) if self.store else None)
        if wl.references is None or acc is not None:
            return acc
        log.info("accuracy pass: %s on %s, %d utterances", job.variant, dev, len(entry.wl_full))
        readings = Readings()
        with energy_window(self.meters[dev], f"accuracy|{job.variant}|{dev}", readings):
            res = run_pass(tr, wl, job.scenario, keep_hyps=True)
        parts = self.ctx.gather((wl.utt_ids, wl.references, res.hyps, res.wall_s, readings.energy))
        if self.main:
            ids = [i for p in parts for i in p[0]]
            refs = [r for p in parts for r in p[1]]
            hyps = [h for p in parts for h in p[2]]
            sc = score(refs, hyps)
            joules = [p[4].joules for p in parts if p[4].joules_by_component]
            acc = {"wer": sc.wer, "cer": sc.cer, "n_utts": sc.n_utts, "ref_words": sc.ref_words,
                   "wall_s": max(p[3] for p in parts), "batch_size": tr.batch_size,
                   "energy_j": sum(joules) if joules else None, "energy_method": readings.energy.method}
            self.store.put_pass(acc_key, "accuracy", job.variant, dev, acc, now_iso())
            _save_hyps(self.run_dir, job.variant, dev, ids, refs, hyps)
            log.info("%s on %s: WER %.2f %%, CER %.2f %%", job.variant, dev, 100 * sc.wer, 100 * sc.cer)
        return self.ctx.broadcast(acc)

    def _warmup(self, entry: Loaded, dev: str) -> None:
        from core.provenance import now_iso

        plan = entry.job.scenario.plan(entry.tr, entry.wl.durations)
        # evenly spaced batches ending with the longest (it sets the allocator's high-water mark)
        picks = sorted({round((k + 1) * (len(plan) - 1) / self.cfg.warmup) for k in range(self.cfg.warmup)})
        warm = run_pass(entry.tr, entry.wl, entry.job.scenario, audio_cache=entry.audio_cache,
                        batches=[plan[p] for p in picks])
        if self.store:
            variant = entry.job.variant
            self.store.put_pass(f"{self.chash}|warmup|{variant}|{dev}|{now_iso()}|rank{self.ctx.rank}",
                                "warmup", variant, dev, asdict(warm), now_iso())

    def measure_tracker_overhead(self) -> None:
        """Per device, once: the same work with and without an energy window (saved, reused on resume)."""
        from core.provenance import now_iso

        for dev in self.cfg.devices:
            m = self.meters[dev]
            okey = f"{self.chash}|overhead|{dev}"
            saved = self.ctx.broadcast(self.store.get_pass(okey) if self.store else None)
            if saved is None and m.name != "none" and self.cfg.overhead_pairs > 0:
                cands = [e for (_, d), e in self.loaded.items() if d == dev and self.pending(e.job, dev)]
                if cands:
                    saved = measure_overhead(cands[0], m, self.cfg.overhead_pairs, self.ctx)
                    if self.store:
                        self.store.put_pass(okey, "overhead", cands[0].job.variant, dev, saved, now_iso())
            if saved:
                self.overhead[dev] = saved["fraction"]
                if self.main:
                    self.meta.setdefault("tracker_overhead", {})[dev] = saved
                    log.info("tracker overhead on %s (%s, %d pairs): wall %+.2f %% (fastest with vs without), "
                             "%+.2f %% (medians); process CPU time %+.2f %%", dev, saved["method"], saved["pairs"],
                             100 * saved["fraction"], 100 * saved.get("median_fraction", float("nan")),
                             100 * saved.get("cpu_time_fraction", float("nan")))
        self.write_meta()

    def timed_repeats(self) -> int:
        """The timed repeats, variants interleaved and rotated; each row committed as it completes."""
        from tqdm import tqdm

        todo = [(rep, dev, e) for rep in range(self.cfg.repeats) for dev in self.cfg.devices
                for e in _rotate([e for (_, d), e in self.loaded.items() if d == dev], rep)
                if self.key(e.job, dev, rep) not in self.done]
        written = 0
        pause = float(os.environ.get(ROW_PAUSE_ENV, "0") or 0)
        rss = PeakRSS()
        bar = tqdm(total=len(todo), desc="repeats", unit="row", **self.pbar_opts)
        for rep, dev, e in todo:
            bar.set_postfix_str(f"{e.job.variant} {dev} #{rep}")
            written += self._timed_repeat(e, dev, rep, rss)
            bar.update(1)
            if pause:
                time.sleep(pause)
        bar.close()
        return written

    def _timed_repeat(self, e: Loaded, dev: str, rep: int, rss: PeakRSS) -> int:
        """One repeat of one variant on one device inside its trackers; 1 if rank 0 wrote the row."""
        m = self.meters[dev]
        self.ctx.barrier()  # ranks start each repeat together
        with track_repeat(m, e.tr.device, rss, f"{e.job.variant}|{dev}|{rep}") as r:
            res = run_pass(e.tr, e.wl, e.job.scenario, audio_cache=e.audio_cache)
        net = r.energy.minus_baseline(self.idle_w[dev]) if dev in self.idle_w and r.energy.joules_by_component \
            else r.energy
        part = {"res": asdict(res), "gross": r.energy, "net": net, "peak": r.peak_rss_mb,
                "rss_before": r.rss_before_mb, "cuda_mb": r.cuda_max_alloc_mb, "scope": m.scope,
                "contention": r.contention.as_dict() if r.contention else None,
                "local_rank": self.ctx.local_rank}
        parts = self.ctx.gather(part)
        if not self.main:
            return 0
        row = build_row(e, dev, rep, parts, run=self)
        row.row_key = self.key(e.job, dev, rep)
        self.store.append(row.as_dict())
        self.store.export_csv()
        return 1

    def finish(self, written: int) -> RunSummary:
        """Meters' final descriptions, the run's totals, the CSV export; an error if nothing could run."""
        from core import provenance

        if self.main:  # estimators learn their constants (e.g. codecarbon's RAM watts) from the first window
            for d, m in self.meters.items():
                self.meta["energy"][d]["detail"] = m.describe()
            self.meta["finished"] = provenance.now_iso()
            self.meta["totals"] = _totals(self.store, self.run_id)
            self.write_meta()
            self.store.export_csv()
            skipped = self.meta["skipped"]
            if not written and not self.rows_skipped and skipped:
                raise FootprintError(f"no variant could run: {skipped[0]['variant']} on "
                                     f"{skipped[0]['device']}: {skipped[0]['reason']}")
        return RunSummary(self.run_dir, self.run_id, written, self.rows_skipped, self.meta)


def _command(argv: Sequence[str] | None) -> str:
    if argv is not None:
        return " ".join(argv)
    prog = Path(sys.argv[0]).name
    prog = "python -m bench" if prog == "__main__.py" else prog
    return " ".join([prog, *sys.argv[1:]])


TIMING_NOTES = {
    "wall_s": "whole timed repeat (perf_counter), inside the energy window",
    "decode_s": "audio file decoding (soundfile); NaN for generated random audio",
    "inputs_s": "normalisation, padding, host-to-device copy",
    "model_s": "forward pass only; wall time after torch.cuda.synchronize on GPU (CUDA events in model_s_cuda_events)",
    "text_s": "CTC argmax + greedy decoding",
    "e2e_s": "decode_s + inputs_s + model_s + text_s",
    "rtfx": "audio_s / model_s (model only); audio_s / e2e_s gives the end-to-end figure",
    "energy": "one window per repeat around wall_s; joules per component in energy_components_j, each labelled "
              "measured or estimated in energy_components_measured; energy_j is the gross total",
    "idle baseline": "with a hardware counter, idle power measured first (default 10 s); energy_j_net = energy_j "
                     "minus idle power x wall time, measured components only",
    "peak_rss_mb": "process peak RSS during the repeat (VmHWM reset per repeat); every loaded variant counts",
    "variant_peak_mb": "memory the variant's own pass needs: weights + activations of its heaviest batch, measured "
                       "once per variant x device with only it loaded (variant_peak_method says how; bench/memory.py)",
    "others_cpu_s": "CPU seconds the rest of the machine used during the repeat (system-wide busy - this process); "
                    "contended: > 0.10 of one core on average and > 0.05 s (bench/trackers.py)",
    "paper-loop": "batch 1 in id order, each file decoded inside the loop, as the paper's DataLoader",
    "multi-rank": "model_s/wall_s: slowest rank; audio_s, energy: summed (machine-wide meters once per host)",
}


def _totals(store: Any, run_id: str) -> dict[str, Any]:
    """kWh and CO2 of the whole run (all timed repeats) per device, and per hour of audio."""
    out: dict[str, Any] = {}
    for r in store.rows():
        if r.get("run_id") != run_id:
            continue
        t = out.setdefault(r["device"], {"repeats": 0, "audio_s": 0.0, "wall_s": 0.0, "energy_kwh": 0.0,
                                         "co2_kg": 0.0, "energy_methods": []})
        t["repeats"] += 1
        t["audio_s"] += r.get("audio_s") or 0.0
        t["wall_s"] += r.get("wall_s") or 0.0
        t["energy_kwh"] += r.get("energy_kwh") or 0.0
        t["co2_kg"] += r.get("co2_kg") or 0.0
        if r.get("energy_method") not in t["energy_methods"]:
            t["energy_methods"].append(r.get("energy_method"))
    for t in out.values():
        hours = t["audio_s"] / 3600.0
        t["kwh_per_audio_hour"] = t["energy_kwh"] / hours if hours else None
        t["co2_kg_per_audio_hour"] = t["co2_kg"] / hours if hours else None
        t["note"] = "timed repeats only; accuracy passes are in the passes table (energy_j per pass)"
    return out


def _rotate(xs: list, k: int) -> list:
    """Rotate the variant order each repeat: no variant always runs first (after a cool machine) or last."""
    if not xs:
        return xs
    k %= len(xs)
    return xs[k:] + xs[:k]


def _save_hyps(run_dir: Path, variant: str, device: str, ids: list[str], refs: list[str], hyps: list[str]) -> None:
    d = run_dir / "hyps"
    d.mkdir(exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in f"{variant}__{device}")
    with (d / f"{safe}.tsv").open("w") as f:
        f.write("utt_id\treference\thypothesis\n")
        for i, r, h in sorted(zip(ids, refs, hyps)):
            f.write(f"{i}\t{r}\t{h}\n")
