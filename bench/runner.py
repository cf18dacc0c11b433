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
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from core.errors import FootprintError

log = logging.getLogger(__name__)

PAPER_LOOP_SUFFIX = "@paper-loop"
ROW_PAUSE_ENV = "FOOTPRINT_ROW_PAUSE_S"  # test hook: sleep after each committed row (kill-and-resume test)


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
    idle_baseline_s: float = 0.0
    arch: list[str] = field(default_factory=list)   # "large", "base", "embedded": random-weight timing
    layers: list[int] = field(default_factory=list)
    arch_fraction: float | None = None   # of the dev-clean-shaped workload; default 0.01 on CPU, 1 on CUDA
    paper_loop: bool = False             # also time the paper's batch-1 loop incl. file decoding
    overhead_pairs: int = 2              # with/without-tracker pairs for the overhead check (0: skip)
    seed: int = 0

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
            scenario = "arch" if spec.startswith("arch-") else "batched"
            add(Job(variant=_spec_name(spec), spec=spec, scenario=scenario, batch_size=self.batch_size))
        for arch in self.arch:
            for n in self.layers or [None]:
                spec = f"arch-{arch}" + (f"-L{n}" if n else "")
                if spec not in self.models:
                    add(Job(variant=spec, spec=spec, scenario="arch", batch_size=self.batch_size))
        if self.paper_loop:
            for j in list(jobs):
                if j.scenario == "batched":
                    add(Job(variant=j.variant + PAPER_LOOP_SUFFIX, spec=j.spec, scenario="paper-loop", batch_size=1))
        return jobs

    def hash_payload(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("out")
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
    scenario: str       # batched | paper-loop | arch
    batch_size: int

    @property
    def weights(self) -> str:
        return "random" if self.scenario == "arch" else "trained"


Loader = Callable[[str, str], Any]  # (spec, device) -> core.variant.Variant; the command layer passes compress's


# ---------------------------------------------------------------------------------------------------------
# measuring one pass
# ---------------------------------------------------------------------------------------------------------
@dataclass
class PassResult:
    wall_s: float
    decode_s: float
    inputs_s: float
    model_s: float
    text_s: float
    model_s_cuda_events: float
    n_utts: int
    audio_s: float
    hyps: list[str] | None = None

    @property
    def e2e_s(self) -> float:
        return (0.0 if math.isnan(self.decode_s) else self.decode_s) + self.inputs_s + self.model_s + self.text_s


class _Clock:
    """Stage timer: wall time after a CUDA synchronisation, plus CUDA events for the model stage."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.cuda = device.type == "cuda"
        self.device = device
        self.events: list[tuple[Any, Any]] = []

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def event(self) -> Any:
        if not self.cuda:
            return None
        e = self.torch.cuda.Event(enable_timing=True)
        e.record()
        return e

    def events_s(self) -> float:
        if not self.events:
            return float("nan")
        return sum(a.elapsed_time(b) for a, b in self.events) / 1000.0


def run_pass(tr: Any, wl: Any, scenario: str, keep_hyps: bool = False, audio_cache: list | None = None,
             batches: Sequence[Sequence[int]] | None = None) -> PassResult:
    """One pass of ``tr`` (a ``core.inference.Transcriber``) over workload ``wl``.

    batched/arch: decode every file first (``decode_s``), then length-sorted batches; paper-loop: batch 1
    in id order with each file decoded inside the loop, as the paper's DataLoader did.
    """
    clock = _Clock(tr.device)
    t_start = time.perf_counter()
    decode_s = inputs_s = model_s = text_s = 0.0
    hyps: list[str] = [""] * len(wl)
    audios: list = [None] * len(wl)
    if scenario == "paper-loop":
        plan = [[i] for i in range(len(wl))] if batches is None else [list(b) for b in batches]
    else:
        plan = tr.plan(wl.durations) if batches is None else [list(b) for b in batches]
        if audio_cache is None:
            t = time.perf_counter()
            needed = sorted({i for b in plan for i in b})
            for i in needed:
                audios[i] = wl.loader(i)
            decode_s = time.perf_counter() - t
    for idx in plan:
        if audio_cache is not None:
            batch_audio = [audio_cache[i] for i in idx]
        elif scenario == "paper-loop":
            t = time.perf_counter()
            batch_audio = [wl.loader(i) for i in idx]
            decode_s += time.perf_counter() - t
        else:
            batch_audio = [audios[i] for i in idx]
        t = time.perf_counter()
        inputs = tr.make_inputs(batch_audio)
        clock.sync()
        t1 = time.perf_counter()
        e0 = clock.event()
        logits = tr.forward(inputs)
        e1 = clock.event()
        clock.sync()
        t2 = time.perf_counter()
        if e0 is not None:
            clock.events.append((e0, e1))
        texts = tr.decode(logits, inputs)
        t3 = time.perf_counter()
        inputs_s += t1 - t
        model_s += t2 - t1
        text_s += t3 - t2
        for i, txt in zip(idx, texts):
            hyps[i] = txt
    wall = time.perf_counter() - t_start
    n = len({i for b in plan for i in b})
    audio_s = sum(wl.durations[i] for b in plan for i in b)
    if audio_cache is not None:
        decode_s = float("nan")  # audio was generated, not decoded: no decoding stage to report
    return PassResult(wall, decode_s, inputs_s, model_s, text_s, clock.events_s(), n, audio_s,
                      hyps if keep_hyps else None)


class PeakRSS:
    """Process peak RSS over a span: Linux's VmHWM reset through /proc/self/clear_refs, psutil otherwise."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.can_reset = os.access("/proc/self/clear_refs", os.W_OK)

    def start(self) -> float:
        if self.can_reset:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                self.can_reset = False
        self.before = self.proc.memory_info().rss / 1e6
        return self.before

    def peak_mb(self) -> float:
        now = self.proc.memory_info().rss / 1e6
        if self.can_reset:
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return max(now, int(line.split()[1]) * 1024 / 1e6)
            except OSError:
                pass
        try:  # without a resettable high-water mark: the lifetime peak (an upper bound)
            import resource

            return max(now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3)
        except Exception:  # noqa: BLE001
            return now


# ---------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------
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


def _check_devices(devices: Sequence[str]) -> None:
    import torch

    for d in devices:
        kind = d.split(":")[0]
        if kind not in ("cpu", "cuda"):
            raise FootprintError(f"--device {d}: expected cpu or cuda")
        if kind == "cuda" and not torch.cuda.is_available():
            raise FootprintError(f"--device {d}: no CUDA GPU visible (torch {torch.__version__}"
                                 f"{', a CPU-only build' if torch.version.cuda is None else ''}; check nvidia-smi "
                                 "and CUDA_VISIBLE_DEVICES)")


def _device_name(device: str) -> str:
    from core.provenance import cpu_model, gpu_name

    if device.startswith("cuda"):
        return gpu_name(int(device.split(":")[1]) if ":" in device else 0)
    return cpu_model()


def _median(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def run_benchmark(cfg: RunConfig, loader: Loader, progress: bool = True,
                  argv: Sequence[str] | None = None) -> RunSummary:
    """Run (or resume) the benchmark described by ``cfg`` into ``cfg.out``; see the module docstring."""
    import torch
    from tqdm import tqdm

    from bench import energy as energy_mod
    from core import provenance, results
    from core.distributed import init_from_env
    from bench.energy.carbon import resolve_intensity
    from core.inference import Transcriber
    from core.model_stats import model_stats
    from core.scoring import score
    from bench.workload import arch_workload, from_manifest

    if cfg.repeats < 1:
        raise FootprintError(f"--repeats {cfg.repeats}: need at least 1")
    _check_devices(cfg.devices)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ctx = init_from_env(cfg.devices)
    main = ctx.is_main
    run_dir = Path(cfg.out)
    jobs = cfg.jobs()
    if not jobs:
        raise FootprintError("nothing to run: give --models and/or --arch")

    # -- workloads -------------------------------------------------------------------------------------
    data_wl = None
    if any(j.scenario != "arch" for j in jobs):
        from core.data import resolve_data
        from core.data.librispeech import read_subset

        data_wl = from_manifest(read_subset(resolve_data(cfg.data)), cfg.data, cfg.limit)
        if not len(data_wl):
            raise FootprintError(f"{cfg.data}: no usable utterances")
    arch_wls: dict[str, Any] = {}
    for dev in cfg.devices:
        if any(j.scenario == "arch" for j in jobs):
            frac = cfg.arch_fraction if cfg.arch_fraction is not None else (1.0 if dev.startswith("cuda") else 0.01)
            arch_wls[dev] = arch_workload(frac, cfg.seed)
    manifest_hash = data_wl.manifest_hash if data_wl else ""
    chash = config_hash(cfg, manifest_hash)

    # -- run folder, resume ------------------------------------------------------------------------------
    store = None
    meta: dict[str, Any] = {}
    done: set[str] = set()
    problem = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = results.read_meta(run_dir)
        if meta and meta.get("config_hash") not in (None, chash):
            problem = (f"{run_dir / results.META_NAME}: this folder holds a run with another configuration "
                       f"(config hash {meta.get('config_hash')} != {chash}); use another --out")
    problem = ctx.broadcast(problem)  # every rank stops, not only rank 0 (the others would wait forever)
    if problem:
        ctx.close()
        raise FootprintError(problem)
    if main:
        store = results.ResultsStore(run_dir)
        done = store.done_keys()
        prov = provenance.collect()
        if not meta:
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            meta = {"run_id": f"{stamp}-{chash[:8]}", "schema_version": results.SCHEMA_VERSION,
                    "config_hash": chash, "created": provenance.now_iso()}
        meta.update({
            "command": _command(argv),
            "config": asdict(cfg), "data": cfg.data, "dataset": cfg.data, "manifest_hash": manifest_hash,
            "n_utts": len(data_wl) if data_wl else 0, "audio_s": data_wl.audio_s if data_wl else 0.0,
            "devices": cfg.devices, "repeats": cfg.repeats, "warmup": cfg.warmup, "batch_size": cfg.batch_size,
            "threads": torch.get_num_threads(), "arch_fraction": {d: w.fraction for d, w in arch_wls.items()},
            "world_size": ctx.world_size, "provenance": prov.as_dict(),
            "jobs": [asdict(j) for j in jobs], "timing": TIMING_NOTES,
        })
        meta.setdefault("attempts", []).append(provenance.now_iso())
        meta.setdefault("skipped", [])
        results.write_meta(run_dir, meta)
    done = ctx.broadcast(done)
    run_id = ctx.broadcast(meta.get("run_id"))
    prov = provenance.collect()
    intensity = resolve_intensity(cfg.carbon_intensity, cfg.country)

    def key(job: Job, dev: str, rep: int, pass_: str = "perf") -> str:
        return results.row_key(chash, job.variant, dev, rep, pass_)

    def pending(job: Job, dev: str) -> list[int]:
        return [r for r in range(cfg.repeats) if key(job, dev, r) not in done]

    rows_skipped = sum(1 for j in jobs for d in cfg.devices for r in range(cfg.repeats) if key(j, d, r) in done)
    if rows_skipped and main:
        log.info("resuming %s: %d finished row(s) kept and skipped", run_dir, rows_skipped)

    # -- energy meters, one per device ---------------------------------------------------------------------
    meters: dict[str, Any] = {}
    idle_w: dict[str, dict[str, float]] = {}
    for dev in cfg.devices:
        local_dev = f"cuda:{ctx.local_rank}" if dev == "cuda" and ctx.active else dev
        chain = energy_mod.parse_chain(cfg.energy, dev)
        meters[dev] = energy_mod.open_meter(chain, local_dev, country_iso3=intensity.country_iso3,
                                            carbon_intensity=intensity.g_per_kwh,
                                            log_dir=str(run_dir / "carbontracker") if main else None)
        m = meters[dev]
        if cfg.idle_baseline_s > 0 and m.name != "none":
            ikey = f"{chash}|idle|{dev}|rank{ctx.rank}"
            saved = store.get_pass(ikey) if store else None
            if saved is None:
                log.info("idle baseline on %s: %.0f s of %s with nothing running", dev, cfg.idle_baseline_s, m.name)
                watts = energy_mod.measure_idle(m, cfg.idle_baseline_s)
                saved = {"watts": watts, "seconds": cfg.idle_baseline_s, "method": m.name}
                if store:
                    store.put_pass(ikey, "idle", "", dev, saved, provenance.now_iso())
            idle_w[dev] = saved["watts"]
    if main:
        meta["energy"] = {d: {"method": m.name, "measured": bool(m.measured), "detail": m.describe(),
                              "scope": m.scope, "fallbacks": getattr(m, "fallback_reasons", [])}
                          for d, m in meters.items()}
        meta["energy"]["idle_baseline"] = {d: {"watts": w, "seconds": cfg.idle_baseline_s} for d, w in idle_w.items()}
        meta["carbon_intensity"] = {"g_per_kwh": intensity.g_per_kwh, "source": intensity.source}
        results.write_meta(run_dir, meta)

    # -- load variants, accuracy passes, warm-up -----------------------------------------------------------
    loaded: dict[tuple[str, str], dict[str, Any]] = {}
    audio_caches: dict[int, list] = {}
    pbar_opts = dict(disable=not (progress and main), dynamic_ncols=True)
    for dev in cfg.devices:
        local_dev = f"cuda:{ctx.local_rank}" if dev == "cuda" and ctx.active else dev
        for job in jobs:
            acc_key = key(job, dev, -1, "accuracy")
            if not pending(job, dev) and (store is None or job.scenario == "arch"
                                          or store.get_pass(acc_key) is not None):
                continue
            wl_full = arch_wls[dev] if job.scenario == "arch" else data_wl
            wl = wl_full.shard(ctx.rank, ctx.world_size)
            try:
                t0 = time.perf_counter()
                v = loader(job.spec, local_dev)
                dtype = getattr(v, "dtype", None)  # fp16/bf16 variants compute in their dtype
                tr = Transcriber(v.model, do_normalize=v.do_normalize, device=local_dev, batch_size=job.batch_size,
                                 max_batch_seconds=cfg.max_batch_seconds,
                                 dtype=None if dtype in (None, torch.float32) else dtype)
                load_s = time.perf_counter() - t0
            except Exception as exc:  # noqa: BLE001 - one variant failing on one device must not stop the run
                if isinstance(exc, FootprintError) and len(cfg.devices) == 1 and len(jobs) == 1:
                    raise
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                log.warning("%s on %s: cannot load, skipped (%s)", job.variant, dev, reason)
                if main:
                    meta["skipped"].append({"variant": job.variant, "device": dev, "reason": reason})
                    results.write_meta(run_dir, meta)
                continue
            info = dict(getattr(v, "info", {}) or {})
            if any(info.get(k) is None for k in ("params", "size_mb", "sparsity", "conv_layers", "transformer_layers")):
                info = {**model_stats(tr.model), **{k: x for k, x in info.items() if x is not None}}
            entry = {"job": job, "tr": tr, "wl": wl, "wl_full": wl_full, "info": info,
                     "recipe": getattr(v, "recipe", job.spec), "model_path": getattr(v, "path", None) or
                     (str(Path(job.spec).expanduser().resolve()) if Path(job.spec).expanduser().is_dir() else ""),
                     "audio_cache": None, "load_s": load_s}
            if not wl.from_files:  # generated audio, shared by every variant on this device (GBs at full size)
                if id(wl_full) not in audio_caches:
                    audio_caches[id(wl_full)] = [wl.loader(i) for i in range(len(wl))]
                entry["audio_cache"] = audio_caches[id(wl_full)]
            loaded[(job.variant, dev)] = entry
            # accuracy pass (not for random weights)
            acc = store.get_pass(acc_key) if store else None
            acc = ctx.broadcast(acc)
            if wl.references is not None and acc is None:
                log.info("accuracy pass: %s on %s, %d utterances", job.variant, dev, len(wl_full))
                meters[dev].begin_window(f"accuracy|{job.variant}|{dev}")
                res = run_pass(tr, wl, job.scenario, keep_hyps=True)
                acc_energy = meters[dev].end_window(f"accuracy|{job.variant}|{dev}")
                parts = ctx.gather((wl.utt_ids, wl.references, res.hyps, res.wall_s, acc_energy))
                if main:
                    ids = [i for p in parts for i in p[0]]
                    refs = [r for p in parts for r in p[1]]
                    hyps = [h for p in parts for h in p[2]]
                    sc = score(refs, hyps)
                    joules = [p[4].joules for p in parts if p[4].joules_by_component]
                    acc = {"wer": sc.wer, "cer": sc.cer, "n_utts": sc.n_utts, "ref_words": sc.ref_words,
                           "wall_s": max(p[3] for p in parts), "batch_size": tr.batch_size,
                           "energy_j": sum(joules) if joules else None, "energy_method": acc_energy.method}
                    store.put_pass(acc_key, "accuracy", job.variant, dev, acc, provenance.now_iso())
                    _save_hyps(run_dir, job.variant, dev, ids, refs, hyps)
                    log.info("%s on %s: WER %.2f %%, CER %.2f %%", job.variant, dev, 100 * sc.wer, 100 * sc.cer)
                acc = ctx.broadcast(acc)
            entry["acc"] = acc or {}
            if pending(job, dev) and cfg.warmup > 0:
                plan = [[i] for i in range(len(wl))] if job.scenario == "paper-loop" else tr.plan(wl.durations)
                # evenly spaced batches ending with the longest (it sets the allocator's high-water mark)
                picks = sorted({round((k + 1) * (len(plan) - 1) / cfg.warmup) for k in range(cfg.warmup)})
                warm = run_pass(tr, wl, job.scenario, audio_cache=entry["audio_cache"],
                                batches=[plan[p] for p in picks])
                if store:
                    store.put_pass(f"{chash}|warmup|{job.variant}|{dev}|{provenance.now_iso()}|rank{ctx.rank}",
                                   "warmup", job.variant, dev, asdict(warm), provenance.now_iso())

    # -- tracker overhead: the same work with and without an energy window ---------------------------------
    overhead: dict[str, float] = {}
    for dev in cfg.devices:
        m = meters[dev]
        okey = f"{chash}|overhead|{dev}"
        saved = store.get_pass(okey) if store else None
        saved = ctx.broadcast(saved)
        if saved is None and m.name != "none" and cfg.overhead_pairs > 0:
            cands = [e for (name, d), e in loaded.items() if d == dev and pending(e["job"], dev)]
            if cands:
                saved = measure_overhead(cands[0], m, cfg.overhead_pairs, ctx)
                if store:
                    store.put_pass(okey, "overhead", cands[0]["job"].variant, dev, saved, provenance.now_iso())
        if saved:
            overhead[dev] = saved["fraction"]
            if main:
                meta.setdefault("tracker_overhead", {})[dev] = saved
                log.info("tracker overhead on %s (%s, %d pairs): wall %+.2f %% (fastest with vs without), "
                         "%+.2f %% (medians); process CPU time %+.2f %%", dev, saved["method"], saved["pairs"],
                         100 * saved["fraction"], 100 * saved.get("median_fraction", float("nan")),
                         100 * saved.get("cpu_time_fraction", float("nan")))
    if main:
        results.write_meta(run_dir, meta)

    # -- timed repeats, interleaved ----------------------------------------------------------------------
    todo = [(rep, dev, e) for rep in range(cfg.repeats) for dev in cfg.devices
            for e in _rotate([e for (n, d), e in loaded.items() if d == dev], rep)
            if key(e["job"], dev, rep) not in done]
    written = 0
    pause = float(os.environ.get(ROW_PAUSE_ENV, "0") or 0)
    rss = PeakRSS()
    bar = tqdm(total=len(todo), desc="repeats", unit="row", **pbar_opts)
    for rep, dev, e in todo:
        job, tr, wl = e["job"], e["tr"], e["wl"]
        m = meters[dev]
        bar.set_postfix_str(f"{job.variant} {dev} #{rep}")
        ctx.barrier()  # ranks start each repeat together
        if tr.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(tr.device)
        rss_before = rss.start()
        m.begin_window(f"{job.variant}|{dev}|{rep}")
        res = run_pass(tr, wl, job.scenario, audio_cache=e["audio_cache"])
        meas = m.end_window(f"{job.variant}|{dev}|{rep}")
        peak = rss.peak_mb()
        cuda_mb = torch.cuda.max_memory_allocated(tr.device) / 1e6 if tr.device.type == "cuda" else float("nan")
        net = meas.minus_baseline(idle_w[dev]) if dev in idle_w and meas.joules_by_component else meas
        part = {"res": asdict(res), "gross": meas, "net": net, "peak": peak, "rss_before": rss_before,
                "cuda_mb": cuda_mb, "scope": m.scope, "local_rank": ctx.local_rank}
        parts = ctx.gather(part)
        if main:
            row = _make_row(cfg, e, dev, rep, parts, chash, run_id, intensity, prov, overhead.get(dev),
                            idle_w.get(dev), ctx.world_size, tr.batch_size)
            row["row_key"] = key(job, dev, rep)
            store.append(row)
            store.export_csv()
            written += 1
        bar.update(1)
        if pause:
            time.sleep(pause)
    bar.close()
    if main:  # estimators learn their constants (e.g. codecarbon's RAM watts) from the first window
        for d, m in meters.items():
            meta["energy"][d]["detail"] = m.describe()
    for m in meters.values():
        m.close()
    if main:
        meta["finished"] = provenance.now_iso()
        meta["totals"] = _totals(store, run_id)
        results.write_meta(run_dir, meta)
        store.export_csv()
        store.close()
        if not written and not rows_skipped and meta["skipped"]:
            raise FootprintError(f"no variant could run: {meta['skipped'][0]['variant']} on "
                                 f"{meta['skipped'][0]['device']}: {meta['skipped'][0]['reason']}")
    ctx.close()
    return RunSummary(run_dir, run_id, written, rows_skipped, meta)


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
    "energy": "one window per repeat around wall_s; joules per component in energy_components_j",
    "peak_rss_mb": "process peak RSS during the repeat (VmHWM reset per repeat); every loaded variant counts",
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


def measure_overhead(entry: dict[str, Any], meter: Any, pairs: int, ctx: Any) -> dict[str, Any]:
    """Time the same pass with and without an energy window, alternating which goes first."""
    tr, wl, job = entry["tr"], entry["wl"], entry["job"]
    with_s: list[float] = []
    without_s: list[float] = []
    ops_s: list[float] = []
    # One untimed full pass first: the warm-up batches do not create every input shape's kernels, and the
    # first full pass pays for them; without this the first timed pass of the pairs would carry that cost.
    t_settle = time.perf_counter()
    run_pass(tr, wl, job.scenario, audio_cache=entry["audio_cache"])
    settle_s = time.perf_counter() - t_settle
    cpu_with: list[float] = []
    cpu_without: list[float] = []
    for i in range(pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        for tracked in order:
            ctx.barrier()
            c0 = time.process_time()  # this process's CPU time, all threads: less sensitive to other tenants
            t0 = time.perf_counter()
            if tracked:
                meter.begin_window("overhead")
            t1 = time.perf_counter()
            run_pass(tr, wl, job.scenario, audio_cache=entry["audio_cache"])
            t2 = time.perf_counter()
            if tracked:
                meter.end_window("overhead")
                ops_s.append((t1 - t0) + (time.perf_counter() - t2))
            (with_s if tracked else without_s).append(time.perf_counter() - t0)
            (cpu_with if tracked else cpu_without).append(time.process_time() - c0)
    w, wo = _median(with_s), _median(without_s)
    cw, cwo = _median(cpu_with), _median(cpu_without)
    mw, mwo = min(with_s), min(without_s)
    ops = _median(ops_s)
    return {"method": meter.name, "variant": job.variant, "pairs": pairs, "settle_pass_s": settle_s,
            "with_s": with_s, "without_s": without_s, "window_ops_s": ops_s,
            "median_with_s": w, "median_without_s": wo, "min_with_s": mw, "min_without_s": mwo,
            "fraction": (mw - mwo) / mwo if mwo > 0 else float("nan"),
            "median_fraction": (w - wo) / wo if wo > 0 else float("nan"),
            "window_ops_fraction": ops / wo if wo > 0 else float("nan"),
            "cpu_with_s": cpu_with, "cpu_without_s": cpu_without,
            "cpu_time_fraction": (cw - cwo) / cwo if cwo > 0 else float("nan"),
            "note": "fraction: fastest pass with a window (incl. opening/closing it) vs fastest without (machine "
                    "noise only adds time, so minima are the robust comparison; medians beside them); "
                    "window_ops: the open/close calls alone, a fixed cost per window; cpu_time_fraction: the same "
                    "comparison in this process's CPU seconds (medians), which other tenants disturb less"}


def _save_hyps(run_dir: Path, variant: str, device: str, ids: list[str], refs: list[str], hyps: list[str]) -> None:
    d = run_dir / "hyps"
    d.mkdir(exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in f"{variant}__{device}")
    with (d / f"{safe}.tsv").open("w") as f:
        f.write("utt_id\treference\thypothesis\n")
        for i, r, h in sorted(zip(ids, refs, hyps)):
            f.write(f"{i}\t{r}\t{h}\n")


def _make_row(cfg: RunConfig, e: dict[str, Any], dev: str, rep: int, parts: list[dict[str, Any]], chash: str,
              run_id: str, intensity: Any, prov: Any, overhead: float | None, idle: dict[str, float] | None,
              world: int, batch_size: int) -> dict[str, Any]:
    from core.provenance import now_iso
    from core.results import SCHEMA_VERSION

    job, info, wl_full = e["job"], e["info"], e["wl_full"]
    rs = [p["res"] for p in parts]
    audio_s = sum(r["audio_s"] for r in rs)
    model_s = max(r["model_s"] for r in rs)
    wall_s = max(r["wall_s"] for r in rs)
    # Machine-wide meters are counted once per host (local rank 0); process/device meters are summed.
    counted = [p for p in parts if p["scope"] != "machine" or p["local_rank"] == 0]
    comps: dict[str, float] = {}
    gross = 0.0
    for p in counted:
        for k, v in p["net"].joules_by_component.items():
            comps[k] = comps.get(k, 0.0) + v
        gross += sum(p["gross"].joules_by_component.values())
    meas = parts[0]["gross"]
    has_energy = bool(comps)
    energy_j = sum(comps.values()) if has_energy else float("nan")
    kwh = energy_j / 3.6e6
    hours = audio_s / 3600.0
    detail = parts[0]["net"].detail if has_energy else meas.detail
    frac = getattr(wl_full, "fraction", 1.0) if job.scenario == "arch" else 1.0
    acc = e.get("acc") or {}
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "variant": job.variant, "recipe": e["recipe"],
        "model_path": e["model_path"], "weights": "random" if info.get("trained") is False else job.weights,
        "device": dev, "device_name": _device_name(dev),
        "threads": _threads(), "batch_size": batch_size, "repeat": rep, "n_utts": sum(r["n_utts"] for r in rs),
        "n_skipped": getattr(wl_full, "n_skipped", 0), "audio_s": audio_s, "wall_s": wall_s, "model_s": model_s,
        "decode_s": max(r["decode_s"] for r in rs), "e2e_s": max(_e2e(r) for r in rs),
        "rtf": model_s / audio_s if audio_s else float("nan"), "rtfx": audio_s / model_s if model_s else float("nan"),
        "wer": acc.get("wer", float("nan")), "cer": acc.get("cer", float("nan")),
        "params": info.get("params"), "size_mb": info.get("size_mb"), "size_on_disk_mb": info.get("size_on_disk_mb"),
        "sparsity": info.get("sparsity"), "conv_layers": info.get("conv_layers"),
        "transformer_layers": info.get("transformer_layers"),
        "peak_rss_mb": sum(p["peak"] for p in parts), "cuda_max_alloc_mb": max(p["cuda_mb"] for p in parts),
        "energy_j": energy_j, "energy_kwh": kwh, "energy_method": meas.method, "energy_measured": meas.measured,
        "energy_source_detail": detail, "co2_kg": kwh * intensity.g_per_kwh / 1000.0,
        "carbon_intensity_g_per_kwh": intensity.g_per_kwh, "carbon_intensity_source": intensity.source,
        "kwh_per_audio_hour": kwh / hours if hours else float("nan"),
        "co2_kg_per_audio_hour": kwh * intensity.g_per_kwh / 1000.0 / hours if hours else float("nan"),
        "manifest_hash": getattr(wl_full, "manifest_hash", ""), "dataset": getattr(wl_full, "dataset", ""),
        "git_commit": prov.git_commit, "torch_version": prov.torch_version,
        "transformers_version": prov.transformers_version, "python_version": prov.python_version,
        "cpu_model": prov.cpu_model, "gpu_name": prov.gpu_name, "hostname": prov.hostname, "timestamp": now_iso(),
        # extras
        "scenario": job.scenario, "pass": "perf", "config_hash": chash,
        "inputs_s": max(r["inputs_s"] for r in rs), "text_s": max(r["text_s"] for r in rs),
        "model_s_cuda_events": max(r["model_s_cuda_events"] for r in rs),
        "rss_before_mb": sum(p["rss_before"] for p in parts), "world_size": world,
        "rank_wall_s": [r["wall_s"] for r in rs], "workload_fraction": frac,
        "model_s_full_est": model_s / frac if job.scenario == "arch" and frac else float("nan"),
        "energy_j_gross": gross if has_energy else float("nan"),
        "idle_w": sum(idle.values()) if idle else float("nan"),
        "energy_components_j": comps if has_energy else None,
        "tracker_overhead_frac": overhead if overhead is not None else float("nan"),
        "accuracy_batch_size": acc.get("batch_size"), "git_dirty": prov.git_dirty,
        "compute_dtype": info.get("compute_dtype"),
    }


def _e2e(r: dict[str, Any]) -> float:
    d = r["decode_s"]
    return (0.0 if d is None or math.isnan(d) else d) + r["inputs_s"] + r["model_s"] + r["text_s"]


def _threads() -> int:
    import torch

    return torch.get_num_threads()


SUMMARY_COLUMNS = ("variant", "device", "weights", "batch_size", "n_utts", "audio_s", "model_s", "e2e_s", "rtfx",
                   "wer", "cer", "params", "size_mb", "energy_kwh", "energy_method")


def summarize(df: Any) -> Any:
    """Median over repeats per variant x device, the columns a reader looks at first."""
    import pandas as pd

    if df.empty:
        return df
    num = ["audio_s", "model_s", "e2e_s", "rtfx", "wer", "cer", "size_mb", "energy_kwh"]
    g = df.groupby(["variant", "device"], sort=False)
    out = g[num].median()
    first = g[["weights", "batch_size", "n_utts", "params", "energy_method"]].first()
    out = pd.concat([first, out], axis=1).reset_index()
    out.insert(2, "repeats", g.size().values)
    return out[["variant", "device", "repeats"] + [c for c in SUMMARY_COLUMNS if c not in ("variant", "device")]]
