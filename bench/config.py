"""The runner's configuration and what it plans from it: jobs (variant x scenario), a loaded variant, the summary.

The config hash (what a resumed run must match) covers the configuration, the data manifest and the oneDNN
kernel-cache capacity in effect (bench/onednn.py): rows timed at another capacity are not comparable.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench import scenarios
from bench.scenarios import PAPER_LOOP_SUFFIX, Scenario
from bench.unseen import DEFAULT_SHARE

TIMED_SCENARIOS = ("batched", "unseen")  # what --scenarios chooses among for trained models


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
    overhead_pairs: int = 5              # with/without-tracker pairs for the overhead check (0: skip; < 5: not run)
    seed: int = 0
    # variant_peak_mb: "auto" (a child process per variant x device when the loader pickles, else in this
    # process), "child", "inprocess" or "off"
    variant_memory: str = "auto"
    # trained models: "batched" (warm: the lengths of the accuracy pass and warm-up) and/or "unseen" (bench/unseen.py);
    # ``bench run`` asks for both, the library default stays the warm one
    scenarios: list[str] = field(default_factory=lambda: ["batched"])
    unseen_share: float = DEFAULT_SHARE  # of the utterances held out for ``unseen``, split over the repeats
    # of the batch plan each warm (``batched``) repeat times: every round(1/share)-th batch of the accuracy pass's
    # plan, across its lengths (bench.overhead.slice_batches), so its padded shapes are the accuracy pass's; 1: all.
    # WER always comes from the accuracy pass over every utterance.
    timed_share: float = 1.0
    fresh: bool = False                  # ignore the accuracy cache (bench/accuracy_cache.py); results unchanged
    # specs whose build runs a compiler: the runner may build them in a second process alongside its own builds
    # (bench/side_builds.py); the command layer names them (compress.variants.compiles_when_built)
    side_builds: list[str] = field(default_factory=list)

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
        d.pop("fresh")  # where a WER comes from, not what the run measures: a resume may change it
        d.pop("side_builds")  # which process built a variant first, not what is measured
        if d.get("variant_memory") == "auto":
            d.pop("variant_memory")  # the default keeps the hashes (and resumes) of runs from before it existed
        if d.get("timed_share") == 1.0:
            d.pop("timed_share")  # likewise
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
    variant: Any = None           # the loaded core.variant.Variant (its record and info: the accuracy cache's key)
    accuracy_source: str = ""     # measured | cache (bench/accuracy_cache.py) | "" (no accuracy pass)
    full_pass: bool = False       # this process ran its whole batch plan (accuracy or warm pass): warm already
    content_hash: str = ""        # bench.accuracy_cache.variant_hash, computed once (the caches' keys)
    unseen: Any = None            # bench.unseen.Split of ``wl`` (None: no ``unseen`` repeats for this job)
    # per unseen repeat, this variant's own plan batches of its subset (bench.unseen.aligned); None: batched apart
    unseen_batches: list | None = None
    unseen_hyps: dict[int, str] = field(default_factory=dict)  # wl index -> an unseen repeat's transcript (aligned)
    timed_batches: list | None = None  # what each warm repeat runs (RunConfig.timed_share); None: the whole plan


@dataclass
class RunSummary:
    run_dir: Path
    run_id: str
    rows_written: int
    rows_skipped: int
    meta: dict[str, Any]


def config_hash(cfg: RunConfig, manifest_hash: str, onednn_cache: str = "") -> str:
    payload = json.dumps({"config": cfg.hash_payload(), "manifest": manifest_hash, "onednn_cache": onednn_cache},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]

