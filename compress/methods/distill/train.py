"""The distillation run: set up ranks, teacher, data and student, resume, train through
:class:`compress.training.TrainLoop`, check the ranks agree, save the student as a variant."""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.methods.distill.cache import TeacherCache, prepare_cache
from compress.methods.distill.config import DistillConfig, DistillResult, config_key, student_name
from compress.methods.distill.data import DistillData, load_data
from compress.methods.distill.step import ZERO_ACC, DistillTask, lr_at
from compress.methods.distill.student import build_student, load_init_model, param_digest
from compress.training import (
    BudgetCalibrator,
    Checkpointer,
    LoopSettings,
    TrainLoop,
    amp_dtype,
    load_checkpoint,
    make_batches,
)
from compress.methods.quantize import guard_bf16_grouped_conv
from core.device import Device
from core.distributed import DistContext, init_from_env
from core.errors import FootprintError
from core.train_log import TRAIN_LOG_COLUMNS, TrainLog

log = logging.getLogger("compress.methods.distill")

WORK = ".work"


def setup_dist(cfg: DistillConfig) -> DistContext:
    """Join torchrun's process group (if any) and pick this rank's device."""
    try:
        want = Device.resolve(cfg.device)
    except FootprintError:
        raise FootprintError(f"distill: --device must be auto, cpu, cuda or cuda:N, not {cfg.device!r}") from None
    if want.is_cuda and not torch.cuda.is_available():
        raise FootprintError("distill: --device cuda but CUDA is not available here")
    d = init_from_env([want.kind], timeout_minutes=60)
    d.device = want.for_local_rank(d.local_rank, d.active).torch()
    if want.is_cuda and want.index is None and not d.active:
        d.device = torch.device("cuda:0")
    if d.device.type == "cuda":
        torch.cuda.set_device(d.device)
    return d


def _already_done(out: Path, ckpt_path: Path) -> DistillResult | None:
    from compress.methods.storage import read_variant_json

    tr = read_variant_json(out).get("training", {})
    if not tr.get("finished") or ckpt_path.exists():
        return None
    log.info("%s already holds a trained student (%s); nothing to do (use another --out to train again)",
             out, read_variant_json(out).get("recipe"))
    return DistillResult(str(out), tr.get("steps", 0), tr.get("steps", 0), tr.get("epochs_done", 0),
                         tr.get("wall_s", 0.0), tr.get("val_wer"), 0, "", already_done=True)


def _load_teacher(cfg: DistillConfig) -> tuple[Any, nn.Module, str]:
    """(the teacher variant, its frozen fp32 model, its hash)."""
    from compress.methods.quantize import quantized_modules
    from compress.methods.storage import source_info
    from compress.variants import load_variant

    teacher_v = load_variant(cfg.teacher, device="cpu")
    teacher = teacher_v.model.float().eval()
    if quantized_modules(teacher):
        raise FootprintError(f"{cfg.teacher}: an int8 teacher cannot run on this path; use a float teacher")
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher_hash = (source_info(cfg.teacher, Path(teacher_v.path)).get("hash") if teacher_v.path
                    else f"recipe:{cfg.teacher}:{teacher_v.record.get('source_hash')}") or "unknown"
    return teacher_v, teacher, teacher_hash


def _make_student(cfg: DistillConfig, teacher: nn.Module, device: torch.device) -> tuple[nn.Module, list[int], str]:
    init_model = load_init_model(cfg, teacher)
    student, kept = build_student(init_model, cfg.layers, cfg.init, cfg.student_arch, cfg.layerdrop,
                                  cfg.mask_time_prob)
    layers = int(student.config.num_hidden_layers)
    init_recipe = None
    if cfg.init_from and int(init_model.config.num_hidden_layers) == layers and cfg.student_arch == "standard":
        from compress.methods.storage import read_variant_json

        init_recipe = read_variant_json(Path(cfg.init_from)).get("recipe")
    name = student_name(cfg, layers, init_recipe)
    del init_model
    student.to(device).train()
    if cfg.freeze_feature_encoder:
        student.freeze_feature_encoder()
    log.info("student %s: %d layers taken from %s layers %s (init %s), %d params", name, layers,
             "the teacher" if not cfg.init_from else cfg.init_from, kept, cfg.init,
             sum(p.numel() for p in student.parameters()))
    return student, kept, name


def _steps_per_epoch(cfg: DistillConfig, data: DistillData, world: int) -> int:
    lengths = [len(a) for a in data.audios]
    n_batches = len(make_batches(lengths, int(cfg.batch_seconds * 16000), random.Random(0), shortest_first=True))
    if n_batches // world < 1:
        raise FootprintError(f"{cfg.data}: {n_batches} batches of {cfg.batch_seconds} s cannot feed {world} "
                             "ranks; lower --batch-seconds or use more data")
    return n_batches // world


def _resume(ckpt_path: Path, student: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
            state: dict[str, Any]) -> int:
    """Load the checkpoint into student, optimizer, scaler and state; the step it resumes from."""
    if not ckpt_path.exists():
        return 0
    saved = load_checkpoint(ckpt_path)
    if saved.get("state", {}).get("config_key") != state["config_key"]:
        raise FootprintError(f"{ckpt_path}: made with other settings (teacher, data or options differ); "
                             "rerun with the original options or use another --out")
    student.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    if saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    state.update(saved["state"])
    log.info("resumed from %s at step %d/%d (epoch %d)", ckpt_path, state["step"], state["total_steps"],
             state["epoch"] + 1)
    return int(state["step"])


def _teacher_cache(cfg: DistillConfig, work: Path, teacher: nn.Module, teacher_hash: str, data: DistillData,
                   do_norm: bool, group_norm: bool, d: DistContext, amp: torch.dtype | None
                   ) -> TeacherCache | None:
    """Teacher logits: one cached pass (default), or None to run the teacher on the fly."""
    if not cfg.teacher_cache:
        teacher.to(d.device)
        return None
    folder = Path(cfg.cache_dir) if cfg.cache_dir else work / "teacher_cache"
    folder = folder / f"{teacher_hash.removeprefix('sha256:')[:16]}-{'norm' if do_norm else 'raw'}"
    return prepare_cache(folder, teacher, data, do_norm, group_norm, d, amp, cfg.batch_seconds * 2)


def _ranks_in_sync(d: DistContext, digest: str) -> bool | None:
    if not d.active:
        return None
    digests = d.gather(digest)
    in_sync = len(set(digests)) == 1
    (log.info if in_sync else log.error)("ranks' parameters %s (%s)", "identical" if in_sync else "DIFFER",
                                         ", ".join(digests))
    return in_sync


def _seed(cfg: DistillConfig, d: DistContext) -> None:
    if not d.is_main:  # one voice: rank 0 logs, the others only warn
        logging.getLogger("compress").setLevel(logging.WARNING)
        logging.getLogger("bench").setLevel(logging.WARNING)
    if d.device.type == "cpu":
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // d.local_world_size))
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)


def distill(cfg: DistillConfig) -> DistillResult:
    """Train a student by distillation (resumable, DDP-aware); returns where it was saved and how it went."""
    from core.inference import uses_group_norm

    cfg.validate()
    out = Path(cfg.out_dir)
    work = out / WORK
    done = _already_done(out, work / "checkpoint.pt")
    if done is not None:
        return done
    d = setup_dist(cfg)
    _seed(cfg, d)
    teacher_v, teacher, teacher_hash = _load_teacher(cfg)
    do_norm, group_norm = teacher_v.do_normalize, uses_group_norm(teacher)
    data = load_data(cfg)
    log.info("train: %d utterances, %.2f h (fraction %.2f); validation: %s", len(data.audios), data.train_hours,
             cfg.data_fraction, data.val_desc)
    student, kept, name = _make_student(cfg, teacher, d.device)
    steps_per_epoch = _steps_per_epoch(cfg, data, d.world_size)
    key = config_key(cfg, teacher_hash, data.train_hash, d.world_size)
    from compress.methods.storage import read_variant_json

    finished = read_variant_json(out).get("training", {})
    if finished.get("finished") and finished.get("config_key") != key:
        raise FootprintError(f"{out}: already holds a student trained with other settings; use another --out")
    run = _Run(cfg, out, work, d, student, data, steps_per_epoch, key)
    if run.amp == torch.bfloat16 and d.device.type == "cpu":
        for model in (teacher, student):
            guard_bf16_grouped_conv(model)
    resumed_from = _resume(work / "checkpoint.pt", student, run.opt, run.scaler, run.state)
    torch.manual_seed(cfg.seed + 1000 * d.rank + int(run.state["step"]))  # dropout/masking streams per rank
    cache = _teacher_cache(cfg, work, teacher, teacher_hash, data, do_norm, group_norm, d, run.amp)
    if cache is not None:
        teacher = teacher_v.model = None  # not needed any more: free it
    run.train(teacher, cache, do_norm, group_norm, resumed_from, name)
    digest = param_digest(student)
    in_sync = _ranks_in_sync(d, digest)
    state = run.state
    result = DistillResult(str(out), state["step"], state["total_steps"], state["step"] / steps_per_epoch,
                           state["wall_s"], state["val_wer"], resumed_from, digest, ranks_in_sync=in_sync)
    if d.is_main:
        _finalize(cfg, student, out, name, kept, data, state, steps_per_epoch, teacher_v, teacher_hash, do_norm,
                  d, in_sync)
        if not cfg.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    d.barrier()
    d.close_own()
    return result


class _Run:
    """Optimizer, AMP, loop state and the loop itself for one distillation run."""

    def __init__(self, cfg: DistillConfig, out: Path, work: Path, d: DistContext, student: nn.Module,
                 data: DistillData, steps_per_epoch: int, key: str) -> None:
        self.cfg, self.out, self.work, self.d, self.student = cfg, out, work, d, student
        self.data, self.steps_per_epoch = data, steps_per_epoch
        self.opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                     weight_decay=cfg.weight_decay)
        self.amp = amp_dtype(cfg.amp, d.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        total = cfg.epochs * steps_per_epoch
        if cfg.max_steps:
            total = min(total, int(cfg.max_steps))
        self.state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "total_steps": total,
                                      "calibrated": cfg.max_minutes is None, "wall_s": 0.0, "audio_seconds": 0.0,
                                      "acc": dict(ZERO_ACC), "val_wer": None, "config_key": key}

    def _lr(self, step: int, total: int) -> float:
        warm = max(1, min(round(self.cfg.warmup_epochs * self.steps_per_epoch), total // 5))
        return lr_at(step, total, warm, self.cfg.lr)

    def train(self, teacher: nn.Module | None, cache: TeacherCache | None, do_norm: bool, group_norm: bool,
              resumed_from: int, name: str) -> None:
        cfg, d = self.cfg, self.d
        if d.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.work.mkdir(parents=True, exist_ok=True)
            (self.out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1, default=str) + "\n")
        # layerdrop and time masking leave some parameters unused in some steps
        model = d.wrap_ddp(self.student, find_unused_parameters=True)
        train_log = TrainLog(self.out / "train_log.csv", TRAIN_LOG_COLUMNS, enabled=d.is_main)
        task = DistillTask(cfg, self.student, model, teacher, cache, self.data, do_norm, group_norm, d, self.amp,
                           self.opt, self.steps_per_epoch, train_log)
        ckpt = Checkpointer(self.work / "checkpoint.pt", self.student, self.opt, self.state, enabled=d.is_main,
                            extra=lambda: {"scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {}})
        settings = LoopSettings(f"distill {name}", self._lr, cfg.grad_clip, cfg.checkpoint_minutes,
                                cfg.checkpoint_steps, checkpoint_each_epoch=True)
        # two warm-up steps, then ``calibration_steps`` timed ones; never more steps than the epochs ask for
        calibrator = BudgetCalibrator(cfg.max_minutes, 2, cfg.calibration_steps, resumed_from, cap=True, log=log,
                                      dist=d)
        task.start(self.state)
        try:
            TrainLoop(task, self.student.parameters(), self.opt, self.state, settings, ckpt, calibrator, log, d,
                      self.scaler).run()
        finally:
            task.close()


def _finalize(cfg: DistillConfig, student: nn.Module, out: Path, name: str, kept: list[int], data: DistillData,
              state: dict[str, Any], steps_per_epoch: int, teacher_v: Any, teacher_hash: str, do_norm: bool,
              d: DistContext, in_sync: bool | None) -> None:
    from compress.methods.storage import save_variant

    student = student.float().cpu().eval()
    arch, pools = cfg.student_arch, getattr(student.config, "maxpool_layers", None)
    if arch == "standard" and pools:  # trained further from a max-pool student: record the front end it has
        arch = f"maxpool-conv{min(pools)}"
    stage_cfg = {"layers": int(student.config.num_hidden_layers), "init": cfg.init,
                 "student_arch": arch, "init_from": cfg.init_from, "teacher_layers_kept": kept,
                 "train_hours": round(data.train_hours, 4), "data_fraction": cfg.data_fraction,
                 "epochs": cfg.epochs, "lr": cfg.lr, "temperature": cfg.temperature,
                 "feature_penalty_weight": cfg.feature_penalty_weight, "ctc_weight": cfg.ctc_weight,
                 "batch_seconds": cfg.batch_seconds, "seed": cfg.seed}
    training = {"finished": True, "steps": state["step"], "total_steps": state["total_steps"],
                "steps_per_epoch": steps_per_epoch, "epochs_done": round(state["step"] / steps_per_epoch, 4),
                "wall_s": round(state["wall_s"], 1), "audio_hours_processed": round(state["audio_seconds"] / 3600, 4),
                "val_wer": state["val_wer"], "validation": data.val_desc, "train_manifest_hash": data.train_hash,
                "world_size": d.world_size, "device": str(d.device), "ranks_in_sync": in_sync,
                "config_key": state["config_key"], "teacher_cache": cfg.teacher_cache,
                "truncated_by_budget": state["total_steps"] < cfg.epochs * steps_per_epoch}
    save_variant(student, out, recipe=name, stages=[{"name": name, "config": stage_cfg}], do_normalize=do_norm,
                 source={"spec": cfg.teacher, "hash": teacher_hash},
                 storage_dtype=torch.float16 if cfg.save_dtype == "float16" else None,
                 extra={"training": training, **(cfg.record or {})}, trained=True)
