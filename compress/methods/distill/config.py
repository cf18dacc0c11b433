"""Distillation settings, the result of a run, and the key that ties a checkpoint to its settings."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from core.errors import FootprintError


@dataclass
class DistillConfig:
    out_dir: str
    teacher: str = "embedded"
    layers: int | None = None  # None: the init model's depth
    init: str = "alternate"  # alternate | last
    student_arch: str = "standard"  # standard | maxpool-conv{c}
    init_from: str | None = None  # start from this variant directory instead of the teacher's layers
    data: str = "embedded:train-clean"
    hours_train: float = 10.0  # size of the synthetic train-clean (embedded:train-clean only)
    val_data: str | None = None
    val_utterances: int = 200
    data_fraction: float = 1.0
    max_utterance_seconds: float = 20.0
    epochs: int = 10
    lr: float = 2.5e-5
    warmup_epochs: float = 2.0
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    temperature: float = 1.0
    feature_penalty_weight: float = 1.0
    ctc_weight: float = 0.0
    batch_seconds: float = 160.0  # padded audio seconds per batch (per rank)
    grad_clip: float = 5.0
    seed: int = 42
    device: str = "auto"
    amp: str = "auto"  # auto (bf16/fp16 on GPU, off on CPU) | bf16 (on CPU too) | fp16 (GPU) | none
    threads: int | None = None
    teacher_cache: bool = True
    cache_dir: str | None = None  # default OUT/.work/teacher_cache; share it between students of one teacher
    checkpoint_minutes: float = 5.0
    checkpoint_steps: int | None = None
    max_minutes: float | None = None
    max_steps: int | None = None  # cap on optimizer steps (smoke runs); the schedule is fitted to it
    calibration_steps: int = 20
    save_dtype: str = "float32"  # float32 | float16 (storage of the final weights; compute stays fp32)
    layerdrop: float | None = None  # None: the teacher config's
    mask_time_prob: float | None = None  # None: the teacher config's (SpecAugment-style time masking)
    freeze_feature_encoder: bool = False
    eval_batch_seconds: float = 400.0
    keep_work: bool = False  # keep OUT/.work (checkpoint, cache) after finishing
    decode_jobs: int | None = None
    recipe: str | None = None  # the saved variant's recipe name (default distill-L{n} / maxpool-conv{c}-L{n})
    record: dict | None = None  # extra variant.json entries (structured pruning stores its plan here)

    def validate(self) -> None:
        if self.init not in ("alternate", "last"):
            raise FootprintError(f"distill: --init must be alternate or last, not {self.init!r}")
        if not (self.student_arch == "standard" or self.student_arch.startswith("maxpool-conv")):
            raise FootprintError(f"distill: --student-arch must be standard or maxpool-conv<N>, "
                                 f"not {self.student_arch!r}")
        if not 0 < self.data_fraction <= 1:
            raise FootprintError(f"distill: --data-fraction must be in (0, 1], got {self.data_fraction}")
        if self.epochs < 1:
            raise FootprintError("distill: --epochs must be at least 1")
        if self.save_dtype not in ("float32", "float16"):
            raise FootprintError("distill: --save-dtype must be float32 or float16")
        if self.temperature <= 0:
            raise FootprintError("distill: --temperature must be positive")


@dataclass
class DistillResult:
    out_dir: str
    steps: int
    total_steps: int
    epochs_done: float
    wall_s: float
    val_wer: float | None
    resumed_from_step: int
    param_digest: str
    already_done: bool = False
    ranks_in_sync: bool | None = None


def student_name(cfg: DistillConfig, layers: int, init_recipe: str | None = None) -> str:
    """``init_recipe``: the recipe of an ``init_from`` variant of the student's depth; training it further
    (a longer budget) keeps its name, so a continued ``maxpool-conv4-L12`` stays one."""
    if cfg.recipe:
        return cfg.recipe
    if init_recipe:
        return init_recipe
    if cfg.student_arch.startswith("maxpool-conv"):
        return f"{cfg.student_arch}-L{layers}"
    return f"distill-L{layers}"


def config_key(cfg: DistillConfig, teacher_hash: str, train_hash: str, world: int) -> str:
    """What a checkpoint or a finished student must have been made with to be resumed or accepted."""
    keys = ("layers", "init", "student_arch", "init_from", "data_fraction", "epochs", "lr", "warmup_epochs",
            "weight_decay", "temperature", "feature_penalty_weight", "ctc_weight", "batch_seconds", "seed",
            "layerdrop", "mask_time_prob", "freeze_feature_encoder", "max_steps")
    d = {k: getattr(cfg, k) for k in keys}
    d.update(teacher=teacher_hash, train=train_hash, world=world)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
