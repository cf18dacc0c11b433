"""The benchmark runner: variants x devices over a workload into one tidy table (``core.results``).

First each variant is built (a second process builds the compiled ones from the end of the list meanwhile,
bench/side_builds.py) and its memory measured in a child (bench/memory.py).  Then, for each variant x device:
  1. with ``unseen`` (trained models, default): warm-up on the utterances not held out, then N timed repeats
     each over its own held-out, length-disjoint subset (whole batches of the accuracy pass's plan where there
     are enough), which no pass in this process has run (bench/unseen.py);
  2. an accuracy pass: WER, CER over every utterance (hypotheses saved under RUN_DIR/hyps/), running the batches
     the unseen repeats did not (their transcripts are the ones it would make, bench/accuracy.py);
  3. warm-up batches (timed and kept in the ``passes`` table, never in the rows);
  4. ``batched`` (warm): N timed repeats over the same utterances (``timed_share`` < 1: over every k-th batch of
     the accuracy pass's plan, shapes it ran), variants interleaved (and their order rotated) between repeats so
     that machine drift hits all alike; each repeat is one row, committed as it completes.

Timing inside a repeat (``time.perf_counter``; on CUDA after ``torch.cuda.synchronize`` and with CUDA
events beside it): ``decode_s`` audio file decoding, ``inputs_s`` normalisation/padding/copy, ``model_s`` the
forward pass only, ``text_s`` CTC decoding; ``e2e_s`` = their sum, ``wall_s`` the whole repeat.  RTFx =
audio seconds / model seconds (model only, as the Open ASR leaderboard); the paper's end-to-end batch-1
loop (``--paper-loop``) is timed as its own scenario, with file decoding inside the loop.

Energy: one window per repeat around the whole repeat, from the first meter of the fallback chain that
works here (``bench.energy``); an optional idle baseline is subtracted; the trackers' own overhead is
measured by timing the same work with and without a window.  Rerunning the same command resumes.

Parts: the configuration and jobs in ``bench.config``, the scenarios and a pass over a workload in
``bench.scenarios``, the held-out lengths in ``bench.unseen``, the per-repeat trackers in ``bench.trackers``, the
overhead check in ``bench.overhead``, memory in ``bench.memory``, builds beside the runner in
``bench.side_builds``, the row (``core.schema.Row``) in ``bench.rows``, meta.json in ``bench.meta``, oneDNN's
kernel cache in ``bench.onednn``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from bench import making, memory, meta, onednn, scenarios, side_builds, unseen
from bench.accuracy import accuracy_pass
from bench.config import Job, Loaded, Loader, RunConfig, RunSummary, config_hash, _spec_name  # noqa: F401
from bench.overhead import measure_overhead
from bench.phases import PhaseClock
from bench.progress import JobProgress, plan_units, summary_line
from bench.rows import build_row, unseen_fields
from bench.scenarios import PAPER_LOOP_SUFFIX, PassResult, Scenario, run_pass  # noqa: F401 (re-exported)
from bench.trackers import PeakRSS, track_repeat
from core.device import Device, check_devices
from core.errors import FootprintError

log = logging.getLogger(__name__)

ROW_PAUSE_ENV = "FOOTPRINT_ROW_PAUSE_S"  # test hook: sleep after each committed row (kill-and-resume test)
ROW_HOLD_ENV = "FOOTPRINT_ROW_HOLD"  # test hook: after each committed row, wait (2 min at most) for this file to exist


# -- the run ------------------------------------------------------------------------------------------------
def run_benchmark(cfg: RunConfig, loader: Loader, progress: bool = True,
                  argv: Sequence[str] | None = None) -> RunSummary:
    """Run (or resume) the benchmark described by ``cfg`` into ``cfg.out``; see the module docstring.

    Meters, the results store and the process group are closed however the run ends.
    """
    import torch

    from core.distributed import init_from_env

    if cfg.repeats < 1:
        raise FootprintError(f"--repeats {cfg.repeats}: need at least 1")
    bad = sorted(set(cfg.scenarios) - set(("batched", "unseen")))
    if bad or not cfg.scenarios:
        raise FootprintError(f"--scenarios {','.join(cfg.scenarios)}: expected batched and/or unseen")
    if not 0 < cfg.unseen_share < 1:
        raise FootprintError(f"--unseen-share {cfg.unseen_share}: expected a fraction between 0 and 1")
    if not 0 < cfg.timed_share <= 1:
        raise FootprintError(f"--timed-share {cfg.timed_share}: expected a fraction above 0, at most 1")
    # entry points set it before torch starts; here it is too late to take effect unless nothing has run yet
    onednn_cache = onednn.ensure_cache()
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
        run.onednn_cache = onednn_cache
        ph = run.phases
        with ph("setup"):
            run.prepare_workloads()
            run.open_folder(argv, cleanup)
        with ph("energy meters"):
            run.open_meters(cleanup)
        run.loader = making.metered_loader(run)  # each build metered: the rows' making_* (bench/making.py)
        run.plan_progress(cleanup)
        run.load_variants()
        written = run.unseen_repeats()  # before any pass over the whole workload runs the held-out lengths
        run.accuracy_and_warmup()
        with ph("tracker overhead"):
            run.measure_tracker_overhead()
        for dev in cfg.devices:
            run.advance("tracker overhead", "", dev)
        written += run.timed_repeats()
        return run.finish(written)


class _Run:
    """The steps of one run_benchmark call and the state they share."""

    def __init__(self, cfg: RunConfig, loader: Loader, ctx: Any, jobs: list[Job], progress: bool) -> None:
        self.cfg, self.loader, self.ctx, self.jobs = cfg, loader, ctx, jobs
        self.main = ctx.is_main
        self.run_dir = Path(cfg.out)
        self.store: Any = None
        self.meta: dict[str, Any] = {}
        self.done: set[str] = set()
        self.meters: dict[str, Any] = {}
        self.idle_w: dict[str, dict[str, float]] = {}
        self.idle_s: dict[str, float] = {}
        self.idle_why: dict[str, str] = {}
        self.loaded: dict[tuple[str, str], Loaded] = {}
        self.making: dict[tuple[str, str], Any] = {}  # (spec, device) -> its making cost (bench/making.py)
        self.side: side_builds.SideBuilds | None = None  # the process building compiled variants alongside
        self.audio_caches: dict[int, list] = {}
        self.overhead: dict[str, float] = {}
        self.rows_skipped = 0
        self.onednn_cache = ""
        self.shapes = unseen.ShapeLog()  # padded shapes each loaded variant x device has run in this process
        self.phases = PhaseClock()  # seconds per phase: meta.json phases_s and the last log line
        self.progress = JobProgress(progress and self.main)
        self.units: dict[tuple[str, str, str], float] = {}  # (step, variant, device) -> its planned progress units
        self.model_s: dict[tuple[str, str, str], dict[int, float]] = {}  # (variant, device, pass) -> rep -> model_s

    # -- keys ----------------------------------------------------------------------------------------------
    def key(self, job: Job, dev: str, rep: int, pass_: str = "perf") -> str:
        from core.results import row_key

        return row_key(self.chash, job.variant, dev, rep, pass_)

    def pending(self, job: Job, dev: str, pass_: str = "perf") -> list[int]:
        """Repeats still to time: ``perf`` the job's own scenario, ``unseen`` (trained, batched jobs only)."""
        batched = job.scenario is scenarios.BATCHED
        if pass_ == "unseen" and not (batched and "unseen" in self.cfg.scenarios):
            return []
        if pass_ == "perf" and batched and "batched" not in self.cfg.scenarios:
            return []
        return [r for r in range(self.cfg.repeats) if self.key(job, dev, r, pass_) not in self.done]

    def pass_(self, e: Loaded, wl: Any, **kw: Any) -> tuple[PassResult, int]:
        """run_pass with its padded shapes recorded for this variant x device; and how many it had run before."""
        res = run_pass(e.tr, wl, e.job.scenario if wl is e.wl else scenarios.BATCHED, **kw)
        return res, self.shapes.record((e.job.variant, str(e.tr.device)), res.shapes)

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
        self.chash = config_hash(cfg, self.manifest_hash, self.onednn_cache)

    def open_folder(self, argv: Sequence[str] | None, cleanup: contextlib.ExitStack) -> None:
        """The run folder: refuse another configuration's, open the store, know what is done (resume)."""
        from bench.energy.carbon import resolve_intensity
        from core import provenance, results

        problem = None
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            try:  # the store holds the folder's lock: taken before meta.json is read, so one writer decides
                self.store = results.ResultsStore(self.run_dir)
                cleanup.callback(self.store.close)
            except FootprintError as e:
                problem = str(e)
            self.meta = results.read_meta(self.run_dir) if problem is None else {}
            if self.meta and self.meta.get("config_hash") not in (None, self.chash):
                problem = (f"{self.run_dir / results.META_NAME}: this folder holds a run with another configuration "
                           f"(config hash {self.meta.get('config_hash')} != {self.chash}); use another --out")
        problem = self.ctx.broadcast(problem)  # every rank stops, not only rank 0 (the others would wait forever)
        if problem:
            raise FootprintError(problem)
        if self.main:
            self.done = self.store.done_keys()
            meta.start_meta(self, argv, provenance.collect())
        self.done = self.ctx.broadcast(self.done)
        self.run_id = self.ctx.broadcast(self.meta.get("run_id"))
        self.prov = provenance.collect()
        self.intensity = resolve_intensity(self.cfg.carbon_intensity, self.cfg.country)
        self.rows_skipped = sum(1 for j in self.jobs for d in self.cfg.devices for r in range(self.cfg.repeats)
                                for p in ("perf", "unseen") if self.key(j, d, r, p) in self.done)
        if self.rows_skipped and self.main:
            log.info("resuming %s: %d finished row(s) kept and skipped", self.run_dir, self.rows_skipped)

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

    # -- progress and phases -----------------------------------------------------------------------------------
    def plan_progress(self, cleanup: contextlib.ExitStack) -> None:
        """Every step still to do in progress units (bench/progress.py), then the one bar for all of them."""
        self.units = plan_units(self)
        self.progress.plan(sum(self.units.values()))
        self.progress.open()
        cleanup.callback(self.progress.close)
        cleanup.enter_context(self.progress.logging_above())

    def advance(self, step: str, variant: str, dev: str) -> None:
        """That step is done (or will not happen): the bar moves by its planned units."""
        units = self.units.pop((step, variant, dev), None)
        if units is not None:
            self.progress.step(units, f"{variant} {step}".strip())

    def drop(self, variant: str, dev: str, prefix: str = "") -> None:
        """Steps that will not run (a variant that cannot load, no unseen split): out of the plan."""
        for k in [k for k in self.units if k[1] == variant and k[2] == dev and k[0].startswith(prefix)]:
            self.progress.plan(-self.units.pop(k))

    def phase(self, job: Job, name: str) -> Any:
        """The phase clock for one job's step; random-weight architecture jobs are counted apart."""
        return self.phases(name if job.scenario.uses_data else f"arch {name}")

    def accuracy_to_do(self, job: Job, dev: str) -> bool:
        return self.store is not None and job.scenario.uses_data \
            and self.store.get_pass(self.key(job, dev, -1, "accuracy")) is None

    def measures_memory(self, job: Job) -> bool:
        # Random-weight architecture rows show params, size and time (reports: Table 2, architecture only), never
        # memory: measuring it would be work the report does not use (a child per depth of the large model).
        return self.cfg.variant_memory != "off" and job.weights != "random"

    # -- steps (continued) ---------------------------------------------------------------------------------------
    def to_build(self, job: Job, dev: str) -> bool:
        acc_done = self.store is None or not job.scenario.uses_data \
            or self.store.get_pass(self.key(job, dev, -1, "accuracy")) is not None
        return bool(self.pending(job, dev) or self.pending(job, dev, "unseen")) or not acc_done

    def start_side_builds(self) -> None:
        """A second process building the CPU variants from the last while this one builds from the first
        (bench/side_builds.py); not in a distributed run, nor with --variant-memory inprocess (one process only)."""
        from bench import energy

        if "cpu" not in self.cfg.devices or self.ctx.world_size > 1 or self.cfg.variant_memory == "inprocess":
            return
        wanted = set(self.cfg.side_builds)
        specs = [job.spec for job in self.jobs
                 if job.spec in wanted and job.scenario.uses_data and self.to_build(job, "cpu")]
        meter_kw = {"chain": energy.parse_chain(self.cfg.energy, "cpu"), "country_iso3": self.intensity.country_iso3,
                    "carbon_intensity": self.intensity.g_per_kwh}
        self.side = side_builds.start(self.loader, specs, self.run_dir / ".side-builds", self.cfg.batch_size,
                                      self.cfg.max_batch_seconds, meter_kw, memory.default_threads())

    def finish_side_builds(self) -> None:
        if self.side is None:
            return
        summary = self.side.finish()
        shutil.rmtree(self.side.folder, ignore_errors=True)
        self.side = None
        if self.main:
            self.meta["side_builds"] = summary
            self.write_meta()

    def load_variants(self) -> None:
        """Load each job still to do on each device, and measure its memory (before any pass: less garbage)."""
        self.start_side_builds()
        try:
            self._load_variants()
        finally:
            self.finish_side_builds()  # before anything is timed: the side process must have ended

    def _load_variants(self) -> None:
        for dev in self.cfg.devices:
            for job in self.jobs:
                todo = self.pending(job, dev) or self.pending(job, dev, "unseen")
                if not self.to_build(job, dev):
                    continue
                with self.phase(job, "build"):
                    entry = self._load(job, dev)
                self.advance("build", job.variant, dev)
                if entry is None:
                    self.drop(job.variant, dev)
                    continue
                self.loaded[(job.variant, dev)] = entry
                if todo and self.measures_memory(job):
                    with self.phase(job, "memory"):
                        entry.memory = memory.for_run(self, entry, dev)
                elif todo:
                    entry.memory = {"variant_peak_mb": float("nan"), "variant_peak_method": (
                        "not measured (--variant-memory off)" if self.cfg.variant_memory == "off" else
                        "not measured (random weights: timing only)")}
                self.advance("memory", job.variant, dev)

    def accuracy_and_warmup(self) -> None:
        """Each loaded variant's accuracy pass over the whole workload (once) and its warm-up batches."""
        for (_, dev), entry in self.loaded.items():
            with self.phase(entry.job, "accuracy"):
                entry.acc = accuracy_pass(self, entry, dev) or {}
            self.advance("accuracy", entry.job.variant, dev)
            # after a pass over the whole plan, warm-up batches (some of its batches) would run nothing new
            if self.pending(entry.job, dev) and self.cfg.warmup > 0 and not entry.full_pass:
                with self.phase(entry.job, "warm-up"):
                    self._warmup(entry, dev, entry.wl)
            self.advance("warm-up", entry.job.variant, dev)

    def _load(self, job: Job, dev: str) -> Loaded | None:
        """The variant on this device as a Transcriber, or None (logged, recorded in meta) if it cannot load."""
        from core.model_stats import model_stats

        local_dev = self.local_device(dev)
        side_result = self.side.take(job.spec) if self.side is not None and dev == "cpu" \
            and job.scenario.uses_data else None
        try:
            base_mb = memory.baseline(local_dev, trim=True) if self.cfg.variant_memory != "off" else float("nan")
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
        applied = side_builds.apply(side_result, info) if side_result is not None else None
        if applied is not None:  # the side process built it from a cold cache: that is its one-time cost
            info, load_s = applied
            self.making[(job.spec, local_dev)] = making.side_build_making(v, job.spec, local_dev, side_result,
                                                                         self.intensity)
        spec_dir = Path(job.spec).expanduser()
        wl_full = job.scenario.workload(self.data_wl, self.arch_wls, dev)
        wl = wl_full.shard(self.ctx.rank, self.ctx.world_size)
        entry = Loaded(job=job, tr=tr, wl=wl, wl_full=wl_full, info=info, recipe=getattr(v, "recipe", job.spec),
                       model_path=getattr(v, "path", None) or (str(spec_dir.resolve()) if spec_dir.is_dir() else ""),
                       load_s=load_s, base_mb=base_mb, variant=v)
        if self.pending(job, dev, "unseen"):
            entry.unseen, entry.unseen_batches = self.unseen_split(job, tr, wl)
            if entry.unseen is None:
                self.drop(job.variant, dev, "unseen")
            if entry.unseen is None and self.main:
                log.warning("%s on %s: too few distinct lengths for %d unseen repeats; none timed", job.variant, dev,
                            self.cfg.repeats)
                self.meta["skipped"].append({"variant": job.variant, "device": dev, "scenario": "unseen",
                                             "reason": f"fewer than {self.cfg.repeats + 1} distinct lengths"})
        if self.cfg.timed_share < 1 and job.scenario is scenarios.BATCHED and job.scenario.uses_data:
            from bench.overhead import slice_batches

            entry.timed_batches = slice_batches(job.scenario.plan(tr, wl.durations), self.cfg.timed_share)
        if not wl.from_files:  # generated audio, shared by every variant on this device (GBs at full size)
            if id(wl_full) not in self.audio_caches:
                self.audio_caches[id(wl_full)] = [wl.loader(i) for i in range(len(wl))]
            entry.audio_cache = self.audio_caches[id(wl_full)]
        return entry

    def unseen_split(self, job: Job, tr: Any, wl: Any) -> tuple[unseen.Split | None, list | None]:
        """The held-out subsets (the same for every variant: whole batches of the run's batching where there are
        enough, else single utterances) and this variant's batches of them when its own plan has them whole
        (bench/unseen.py).  One process only: ranks plan their own shards."""
        from core.inference import plan_batches

        args = (self.cfg.repeats, self.cfg.unseen_share, self.cfg.seed)
        if self.ctx.world_size == 1:
            sp = unseen.split_batches(plan_batches(wl.durations, self.cfg.batch_size, self.cfg.max_batch_seconds),
                                      wl.durations, *args)
            if sp is not None:
                return sp, unseen.aligned(sp, job.scenario.plan(tr, wl.durations))
        return unseen.split(wl.durations, *args), None

    def _warmup(self, entry: Loaded, dev: str, wl: Any, scenario: str = "batched") -> None:
        from core.provenance import now_iso

        plan = entry.timed_batches if wl is entry.wl and entry.timed_batches else \
            entry.job.scenario.plan(entry.tr, wl.durations)
        # evenly spaced batches ending with the longest (it sets the allocator's high-water mark)
        picks = sorted({round((k + 1) * (len(plan) - 1) / self.cfg.warmup) for k in range(self.cfg.warmup)})
        warm, _ = self.pass_(entry, wl, audio_cache=entry.audio_cache, batches=[plan[p] for p in picks])
        if self.store:
            variant = entry.job.variant
            # the scenario in the key: the unseen and warm warm-ups of a variant can start within the same second
            self.store.put_pass(f"{self.chash}|warmup|{variant}|{dev}|{scenario}|{now_iso()}|rank{self.ctx.rank}",
                                "warmup", variant, dev, asdict(warm), now_iso())

    def measure_tracker_overhead(self) -> None:
        """Per device, once: a slice of the same work with and without an energy window, in pairs (saved, reused
        on resume); too few pairs asked for: recorded as not measured, with why, and nothing run."""
        from bench.overhead import describe, measured_fraction
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
                self.overhead[dev] = measured_fraction(saved)  # NaN on the rows unless measured
                if self.main:
                    self.meta.setdefault("tracker_overhead", {})[dev] = saved
                    log.info("tracker overhead on %s: %s", dev, describe(saved))
        self.write_meta()

    def unseen_repeats(self) -> int:
        """``unseen``: each variant warmed up on the utterances not held out, then repeat r over held-out subset r
        (the same for every variant), interleaved and rotated as the warm repeats (bench/unseen.py)."""
        entries = [e for e in self.loaded.values() if e.unseen is not None]
        for (_, dev), e in self.loaded.items():
            if e.unseen is not None and self.cfg.warmup > 0:
                with self.phase(e.job, "unseen warm-up"):
                    self._warmup(e, dev, e.wl.subset(e.unseen.rest), "unseen")
                self.advance("unseen warm-up", e.job.variant, dev)
        return self.timed_repeats("unseen", entries)

    def timed_repeats(self, pass_: str = "perf", entries: list[Loaded] | None = None) -> int:
        """The timed repeats, variants interleaved and rotated; each row committed as it completes."""
        ids = {id(e) for e in (self.loaded.values() if entries is None else entries)}
        todo = [(rep, dev, e) for rep in range(self.cfg.repeats) for dev in self.cfg.devices
                for e in _rotate([e for (_, d), e in self.loaded.items() if d == dev and id(e) in ids], rep)
                if rep in self.pending(e.job, dev, pass_)]
        written = 0
        pause = float(os.environ.get(ROW_PAUSE_ENV, "0") or 0)
        rss = PeakRSS()
        step = "unseen" if pass_ == "unseen" else "repeat"
        last = {(e.job.variant, dev): rep for rep, dev, e in todo}  # the variant's rows are done after this one
        done: list[tuple[Loaded, str]] = []  # variants whose rows are done, their summary line not yet logged
        for rep, dev, e in todo:
            self.progress.label(f"{e.job.variant} {step} #{rep}")
            with self.phase(e.job, "unseen repeats" if pass_ == "unseen" else "timed repeats"):
                written += self._timed_repeat(e, dev, rep, rss, pass_)
            self.advance(f"{step} #{rep}", e.job.variant, dev)
            if pass_ == "perf" and last[(e.job.variant, dev)] == rep and self.main:
                done.append((e, dev))
            done = self._log_summaries(done)
            if pause:
                time.sleep(pause)
            _hold(os.environ.get(ROW_HOLD_ENV))
        self._log_summaries(done, final=True)
        return written

    def _log_summaries(self, done: list[tuple[Loaded, str]], final: bool = False) -> list[tuple[Loaded, str]]:
        """Logs the summary line of each finished variant whose pairs with the teacher are complete (every one
        when ``final``); returns those still waiting for the teacher's repeats."""
        waiting = []
        for e, dev in done:
            line = summary_line(self, e, dev, final)
            if line is None:
                waiting.append((e, dev))
            else:
                log.info("%s", line)
        return waiting

    def _timed_repeat(self, e: Loaded, dev: str, rep: int, rss: PeakRSS, pass_: str = "perf") -> int:
        """One repeat of one variant on one device inside its trackers; 1 if rank 0 wrote the row."""
        m = self.meters[dev]
        wl = e.wl.subset(e.unseen.subsets[rep]) if pass_ == "unseen" else e.wl
        self.ctx.barrier()  # ranks start each repeat together
        batches = (e.unseen_batches[rep] if e.unseen_batches else None) if pass_ == "unseen" else e.timed_batches
        with track_repeat(m, e.tr.device, rss, f"{e.job.variant}|{dev}|{rep}|{pass_}") as r:
            res, reused = self.pass_(e, wl, audio_cache=e.audio_cache, keep_hyps=pass_ == "unseen", batches=batches)
        if pass_ == "unseen" and e.unseen_batches:  # the accuracy pass's own transcripts (bench/accuracy.py)
            e.unseen_hyps.update(zip(e.unseen.subsets[rep], res.hyps))
        net = r.energy.minus_baseline(self.idle_w[dev]) if dev in self.idle_w and r.energy.joules_by_component \
            else r.energy
        part = {"res": asdict(res), "gross": r.energy, "net": net, "peak": r.peak_rss_mb,
                "rss_before": r.rss_before_mb, "cuda_mb": r.cuda_max_alloc_mb, "scope": m.scope,
                "contention": r.contention.as_dict() if r.contention else None,
                "local_rank": self.ctx.local_rank, "reused": reused, "refs": wl.references}
        parts = self.ctx.gather(part)
        if not self.main:
            return 0
        row = build_row(e, dev, rep, parts, run=self)
        row.row_key = self.key(e.job, dev, rep, pass_)
        row.accuracy_source = "measured" if pass_ == "unseen" else e.accuracy_source  # unseen: this repeat's hyps
        self.model_s.setdefault((e.job.variant, dev, pass_), {})[rep] = row.model_s
        if pass_ == "unseen":
            unseen_fields(row, parts)
            if row.shapes_reused:
                log.warning("%s on %s, unseen repeat %d: %d batch(es) ran a padded shape already run", e.job.variant,
                            dev, rep, row.shapes_reused)
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
            with self.phases("finish"):
                self.meta["totals"] = meta.totals(self.store, self.run_id)
            self.meta["phases_s"] = self.phases.as_dict()
            log.info("run phases (this attempt): %s", self.phases.line())
            self.write_meta()
            self.store.export_csv()
            skipped = self.meta["skipped"]
            if not written and not self.rows_skipped and skipped:
                raise FootprintError(f"no variant could run: {skipped[0]['variant']} on "
                                     f"{skipped[0]['device']}: {skipped[0]['reason']}")
        return RunSummary(self.run_dir, self.run_id, written, self.rows_skipped, self.meta)


def _hold(release: str | None, limit_s: float = 120.0) -> None:
    """Wait for the file ``release`` to exist (the run-lock test holds a run between rows this way)."""
    deadline = time.monotonic() + limit_s
    while release and not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)


def _rotate(xs: list, k: int) -> list:
    """Rotate the variant order each repeat: no variant always runs first (after a cool machine) or last."""
    if not xs:
        return xs
    k %= len(xs)
    return xs[k:] + xs[:k]
