"""The results schema as one dataclass: its fields ARE the table's columns, in order (ARCHITECTURE.md
"Results schema").  ``core.results`` derives its column tuples from :class:`Row`, and the runner builds
every row through it, so the two cannot drift.  Standard library only: ``reports`` reads the same schema.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1
_EXTRA = {"extra": True}


def _extra(**kw: Any) -> Any:
    """A column added by this implementation after the contract's (reports ignores what it does not know)."""
    return field(metadata={**_EXTRA, **kw.pop("metadata", {})}, **kw)


@dataclass(kw_only=True)
class Row:
    """One row per (run_id, variant, device, repeat, scenario)."""

    # -- the contract with reports/ ---------------------------------------------------------------------------
    schema_version: int = SCHEMA_VERSION
    run_id: str
    variant: str
    recipe: str | None
    model_path: str | None
    weights: str                          # trained | random
    device: str
    device_name: str
    threads: int
    batch_size: int
    repeat: int
    n_utts: int
    n_skipped: int
    audio_s: float
    wall_s: float
    model_s: float
    decode_s: float
    e2e_s: float
    rtf: float
    rtfx: float
    wer: float
    cer: float
    params: int | None
    size_mb: float | None
    size_on_disk_mb: float | None
    sparsity: float | None
    conv_layers: int | None
    transformer_layers: int | None
    peak_rss_mb: float
    cuda_max_alloc_mb: float
    energy_j: float
    energy_kwh: float
    energy_method: str
    energy_measured: bool
    energy_source_detail: str
    co2_kg: float
    carbon_intensity_g_per_kwh: float
    carbon_intensity_source: str
    kwh_per_audio_hour: float
    co2_kg_per_audio_hour: float
    manifest_hash: str
    dataset: str
    git_commit: str | None
    torch_version: str | None
    transformers_version: str | None
    python_version: str | None
    cpu_model: str | None
    gpu_name: str | None
    hostname: str | None
    timestamp: str
    # -- extras ------------------------------------------------------------------------------------------------
    scenario: str = _extra()                  # batched | paper-loop | arch (random weights, timing only)
    pass_: str = _extra(default="perf", metadata={"column": "pass"})  # perf: one row per timed repeat
    row_key: str | None = _extra(default=None)  # config_hash|variant|device|repeat|pass: the resume key
    config_hash: str = _extra()
    inputs_s: float = _extra()                # waveform normalisation, padding and host->device copy
    text_s: float = _extra()                  # CTC argmax + greedy decoding to text
    model_s_cuda_events: float = _extra()     # GPU time by CUDA events (model_s is wall time after sync)
    rss_before_mb: float = _extra()           # process RSS when the repeat began (all loaded variants count)
    world_size: int = _extra(default=1)       # ranks (torchrun); 1 otherwise
    rank_wall_s: list[float] = _extra(default_factory=list)  # JSON list: wall time of each rank
    workload_fraction: float = _extra(default=1.0)  # arch-only: share of the dev-clean-shaped workload timed
    model_s_full_est: float = _extra(default=float("nan"))  # arch-only: model_s scaled to the full workload
    energy_j_gross: float = _extra(default=float("nan"))  # before the idle baseline is subtracted
    idle_w: float = _extra(default=float("nan"))          # idle baseline power (W), when measured
    energy_components_j: dict[str, float] | None = _extra(default=None)  # JSON: joules per component
    tracker_overhead_frac: float = _extra(default=float("nan"))  # (with tracker - without) / without
    accuracy_batch_size: int | None = _extra(default=None)
    accuracy_source: str = _extra(default="")  # measured | cache: wer/cer from bench/accuracy_cache.py, not this run
    git_dirty: bool | None = _extra(default=None)
    # float32 | float16 | bfloat16 | bfloat16-autocast | bfloat16-front-end
    compute_dtype: str | None = _extra(default=None)
    # -- memory and contention ------------------------------------------------------------------------------------
    variant_peak_mb: float = _extra(default=float("nan"))  # weights + activations of the heaviest batch, alone
    variant_peak_method: str = _extra(default="not measured")  # child-vmhwm | child-cuda-max-alloc | inprocess-...
    others_cpu_s: float = _extra(default=float("nan"))  # CPU s the rest of the machine used during the repeat
    others_cpu_share: float = _extra(default=float("nan"))  # of the repeat's core-seconds (wall x logical CPUs)
    cpu_freq_mhz: float = _extra(default=float("nan"))  # psutil.cpu_freq, mean of start and end; NaN unreadable
    contended: bool | None = _extra(default=None)  # others used > 0.10 core on average (bench/trackers.py)
    # -- extras: energy provenance ---------------------------------------------------------------------------------
    # energy_j is the gross total of every component; energy_measured is true only when every component was
    # read from a hardware counter in this run (a replayed trace is not).
    energy_components_measured: dict[str, bool] | None = _extra(default=None)  # JSON: component -> hardware?
    energy_j_net: float = _extra(default=float("nan"))   # energy_j minus idle power x time; NaN: no baseline
    idle_baseline_s: float = _extra(default=0.0)         # seconds of idle measured before the run (0: none)
    # -- how the variant runs ----------------------------------------------------------------------------------------
    runtime: str = _extra(default="torch")                # torch | onnxruntime | torch.compile (scope)
    compile_s: float = _extra(default=0.0)                # build-time compilation (torch.compile), not timed
    quantized_engine: str | None = _extra(default=None)   # torch int8 kernels: x86 | fbgemm | onednn | qnnpack
    # -- one-time costs and lengths never seen -----------------------------------------------------------
    load_s: float = _extra(default=float("nan"))          # building the variant on this device in this process
    calibration_s: float = _extra(default=float("nan"))   # build-time calibration (static quantisation)
    export_s: float = _extra(default=float("nan"))        # build-time export (ONNX, OpenVINO IR)
    compile_cache: str = _extra(default="")               # cold | warm: the persistent compile cache held it
    calibration_data: str = _extra(default="")            # the calibration audio's spec
    length_buckets: str = _extra(default="")              # batches padded to fixed lengths, e.g. "1s"
    shapes_reused: int | None = _extra(default=None)      # batches whose padded shape this variant had already run
    onednn_cache: str = _extra(default="")                # oneDNN kernel-cache capacity in effect (bench/onednn.py)
    # -- what making the variant cost (core/making.py, bench/making.py): its folder's record (the teacher's
    # training, a student's distillation, a saved variant's) plus a recipe's build at load; NaN: not recorded
    making_wall_s: float = _extra(default=float("nan"))
    making_energy_kwh: float = _extra(default=float("nan"))  # NaN when any phase's energy is unknown
    making_co2_kg: float = _extra(default=float("nan"))
    making_label: str = _extra(default="not recorded")       # how it is known: "estimated (codecarbon)", ...
    making_measured: bool | None = _extra(default=None)      # every phase read from hardware counters

    def as_dict(self) -> dict[str, Any]:
        """Column name -> value, in schema order (what ``ResultsStore.append`` takes)."""
        return {column_name(f): getattr(self, f.name) for f in fields(self)}


def one_time_s(load_s: float, compile_s: float = 0.0, calibration_s: float = 0.0, export_s: float = 0.0) -> float:
    """Seconds a deployer pays once per process before the first utterance.  ``load_s`` is the wall time of
    building the variant and includes what was compiled, calibrated or exported then; the parts' own sum counts
    instead when larger (they were paid at an earlier build).  NaN parts count as zero; NaN when nothing is known."""
    parts = sum(x for x in (compile_s, calibration_s, export_s) if x is not None and x == x)
    if load_s is None or load_s != load_s:
        return parts if parts > 0 else float("nan")
    return max(load_s, parts)


def break_even_hours(one_time: float, teacher_one_time: float, s_per_audio_s: float,
                     teacher_s_per_audio_s: float) -> float:
    """Hours of audio after which the variant's total time (one-time cost + per-audio time) beats the teacher's:
    the extra one-time seconds over the seconds saved per hour of audio.  0 when it costs no more up front and
    is faster, inf ("never") when it is not faster, NaN when a figure is missing."""
    figures = (one_time, teacher_one_time, s_per_audio_s, teacher_s_per_audio_s)
    if any(x is None or x != x for x in figures):
        return float("nan")
    saved_per_hour = (teacher_s_per_audio_s - s_per_audio_s) * 3600.0
    if saved_per_hour <= 0:
        return float("inf")
    return max(0.0, one_time - teacher_one_time) / saved_per_hour


def column_name(f: Any) -> str:
    return f.metadata.get("column", f.name)


SCHEMA_COLUMNS: tuple[str, ...] = tuple(column_name(f) for f in fields(Row) if not f.metadata.get("extra"))
EXTRA_COLUMNS: tuple[str, ...] = tuple(column_name(f) for f in fields(Row) if f.metadata.get("extra"))
ALL_COLUMNS: tuple[str, ...] = SCHEMA_COLUMNS + EXTRA_COLUMNS
