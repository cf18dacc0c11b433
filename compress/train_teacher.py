"""CTC training from scratch of the embedded wav2vec 2.0 teacher on the synthetic corpus.

``footprint compress train-teacher --out DIR`` trains Wav2Vec2ForCTC (``arch.py``'s ``embedded``: the standard
conv kernels and strides at reduced width, 12 x 192, pre-LN) with:
  * batches of similar length (buckets capped by padded audio seconds), shortest first in the first epoch;
  * AdamW, linear warm-up then cosine decay, gradient clipping, seed 42, bf16 autocast on CUDA;
  * an optional wall-clock budget: the first steps calibrate the step time and fix the total step count, which
    is stored in the checkpoint so a resumed run follows the same schedule;
  * checkpoints every ``checkpoint_minutes`` (atomic rename), resumed after any kill, loaded with weights_only;
  * a CSV log of loss, learning rate and dev WER/CER (greedy decoding) at intervals.
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compress.training import (
    BudgetCalibrator,
    Checkpointer,
    LoopSettings,
    StepResult,
    TrainLoop,
    autocast,
    collate,
    evaluate,
    load_checkpoint,
    load_split,
    make_batches,
    warmup_cosine,
)
from core.data.librispeech import read_subset
from compress.methods.quantize import guard_bf16_grouped_conv
from core.device import Device
from core.train_log import TEACHER_LOG_COLUMNS, TrainLog

log = logging.getLogger(__name__)

__all__ = ["TeacherTrainConfig", "collate", "evaluate", "load_split", "lr_at", "make_batches", "train_teacher"]


@dataclass
class TeacherTrainConfig:
    out_dir: str
    corpus_root: str | None = None  # folder containing LibriSpeech/<subset>; default: synthetic corpus
    hours_train: float = 10.0  # synthetic train-clean size when corpus_root is None
    train_subset: str = "train-clean"
    dev_subset: str = "dev-clean"
    dev_eval_utterances: int = 150
    arch: str = "embedded"
    arch_overrides: dict = field(default_factory=dict)
    steps: int = 20000
    time_budget_minutes: float | None = None  # if set, calibrates ``steps`` to fit the budget
    calibration_steps: int = 60
    peak_lr: float = 1.5e-3
    warmup_fraction: float = 0.08
    min_lr_fraction: float = 0.02
    weight_decay: float = 0.01
    batch_seconds: float = 160.0  # padded audio seconds per batch
    max_utterance_seconds: float = 20.0
    grad_clip: float = 1.0
    seed: int = 42
    device: str = "auto"
    # bf16 autocast: "auto" = on CUDA only; "bf16" also on CPU (faster per step where the CPU has AVX512-BF16 or
    # AMX; weights and optimizer state stay fp32); "none" = fp32 everywhere
    amp: str = "auto"
    eval_every: int = 500
    checkpoint_minutes: float = 5.0
    log_every: int = 50
    threads: int | None = None
    decode_jobs: int | None = None
    save_dtype: str = "float32"  # "float16" halves the shipped size; loaders upcast to fp32
    init_from: str | None = None  # continue from a saved model directory (fresh optimizer and schedule)
    extend_steps: int = 0  # on resume: lengthen the finished schedule by this many steps (re-warms the cosine)
    # the length curriculum (epoch 0 shortest first) helps a model from scratch leave the CTC blank plateau; a
    # continuation (init_from) would instead end its schedule on the longest utterances only. None = from scratch only
    shortest_first: bool | None = None
    # keep the conv feature encoder fixed (as wav2vec 2.0 fine-tuning does): no backward pass through the convs,
    # about a quarter off a CPU step; worth it once the features are learnt, not from scratch
    freeze_feature_encoder: bool = False


def lr_at(step: int, total: int, cfg: TeacherTrainConfig) -> float:
    """Linear warm-up over ``warmup_fraction`` of the run, then cosine decay to ``min_lr_fraction`` of the peak."""
    return warmup_cosine(step, total, int(cfg.warmup_fraction * total), cfg.peak_lr, cfg.min_lr_fraction)


@dataclass
class _Corpus:
    audios: list[np.ndarray]
    labels: list[list[int]]
    lengths: list[int]
    dev_audios: list[np.ndarray]
    dev_texts: list[str]

    @property
    def hours(self) -> float:
        return sum(self.lengths) / 16000 / 3600


def _load_corpus(cfg: TeacherTrainConfig) -> _Corpus:
    if cfg.corpus_root is None:
        from core.data.synth.corpus import SynthConfig, ensure_corpus

        root = ensure_corpus(SynthConfig(hours_train=cfg.hours_train), (cfg.train_subset, cfg.dev_subset))
    else:
        root = Path(cfg.corpus_root)
    train_m = read_subset(root / "LibriSpeech" / cfg.train_subset)
    dev_m = read_subset(root / "LibriSpeech" / cfg.dev_subset).subset_of(cfg.dev_eval_utterances)
    audios, labels, _ = load_split(train_m, cfg.decode_jobs, cfg.max_utterance_seconds)
    dev_audios, _, dev_texts = load_split(dev_m, cfg.decode_jobs)
    corpus = _Corpus(audios, labels, [len(a) for a in audios], dev_audios, dev_texts)
    log.info("train: %d utterances, %.2f h; dev: %d utterances", len(audios), corpus.hours, len(dev_audios))
    return corpus


def _build_model(cfg: TeacherTrainConfig, device: torch.device) -> torch.nn.Module:
    from transformers import Wav2Vec2ForCTC

    from core.arch import wav2vec2_config

    model = Wav2Vec2ForCTC(wav2vec2_config(cfg.arch, **cfg.arch_overrides)).to(device)
    if cfg.init_from:
        from compress.model_io.hf import load_model_dir

        model.load_state_dict(load_model_dir(cfg.init_from)[0].state_dict())
        log.info("initialised from %s", cfg.init_from)
    if cfg.freeze_feature_encoder:
        model.freeze_feature_encoder()
        log.info("conv feature encoder frozen")
    return model.train()


def _optimizer(cfg: TeacherTrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.peak_lr, betas=(0.9, 0.98), eps=1e-6)


def _resume(cfg: TeacherTrainConfig, ckpt: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
            state: dict[str, Any]) -> None:
    saved = load_checkpoint(ckpt)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    state.update(saved["state"])
    if "recalibrated" not in saved["state"]:
        state["recalibrated"] = True  # a checkpoint from before the epoch-1 recalibration keeps its schedule
    torch.set_rng_state(saved["torch_rng"])
    log.info("resumed from %s at step %d (epoch %d)", ckpt, state["step"], state["epoch"])
    if cfg.extend_steps:
        state["total_steps"] += cfg.extend_steps
        state["calibrated"] = state["recalibrated"] = True
        log.info("schedule extended by %d steps to %d", cfg.extend_steps, state["total_steps"])


class _CTCTask:
    """The teacher's step (CTC loss of the model itself) and its log: a row every ``log_every`` steps, with the
    dev WER/CER every ``eval_every`` steps and at the last step."""

    def __init__(self, cfg: TeacherTrainConfig, model: torch.nn.Module, opt: torch.optim.Optimizer,
                 corpus: _Corpus, device: torch.device, shortest_first: bool, train_log: TrainLog) -> None:
        self.cfg, self.model, self.opt, self.corpus, self.device = cfg, model, opt, corpus, device
        self.shortest_first, self.train_log = shortest_first, train_log
        self.amp = torch.bfloat16 if cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda") else None
        if self.amp == torch.bfloat16 and device.type == "cpu":
            guard_bf16_grouped_conv(model)
        self.losses: list[float] = []

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.cfg.seed * 1000 + epoch)
        return make_batches(self.corpus.lengths, int(self.cfg.batch_seconds * 16000), rng,
                            shortest_first=self.shortest_first and epoch == 0)

    def step(self, idx: list[int]) -> StepResult:
        x, mask, y = collate(self.corpus.audios, self.corpus.labels, idx, self.device)
        with autocast(self.device, self.amp):
            loss = self.model(x, attention_mask=mask, labels=y).loss
        self.losses.append(float(loss.detach()))
        return StepResult(loss, sum(self.corpus.lengths[i] for i in idx) / 16000)

    def after_step(self, state: dict[str, Any], bar: Any) -> None:
        cfg, step = self.cfg, state["step"]
        loss = float(np.mean(self.losses[-cfg.log_every:]))
        lr = self.opt.param_groups[0]["lr"]
        if step % cfg.log_every == 0:
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}")
        evaluating = step % cfg.eval_every == 0 or step >= state["total_steps"]
        if not evaluating and step % cfg.log_every:
            return
        row = {"step": step, "epoch": state["epoch"], "loss": f"{loss:.4f}", "lr": f"{lr:.6g}",
               "wall_s": f"{state['wall_s']:.1f}", "audio_hours": f"{state['audio_seconds'] / 3600:.3f}"}
        if evaluating:
            wer, cer = evaluate(self.model, self.corpus.dev_audios, self.corpus.dev_texts, self.device)
            row.update(dev_wer=f"{wer:.4f}", dev_cer=f"{cer:.4f}")
            log.info("step %d: loss %.3f dev WER %.2f%% CER %.2f%%", step, loss, 100 * wer, 100 * cer)
        self.train_log.write(row)

    def end_of_epoch(self, state: dict[str, Any], complete: bool) -> None:
        pass


def _device(cfg: TeacherTrainConfig) -> torch.device:
    return Device.resolve(cfg.device).torch()


def train_teacher(cfg: TeacherTrainConfig) -> Path:
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    corpus = _load_corpus(cfg)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = _build_model(cfg, device)
    shortest_first = cfg.init_from is None if cfg.shortest_first is None else cfg.shortest_first
    opt = _optimizer(cfg, model)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "total_steps": cfg.steps, "audio_seconds": 0.0,
             "wall_s": 0.0, "calibrated": cfg.time_budget_minutes is None,
             # only a shortest-first epoch 0 miscalibrates the budget: its first steps, on the shortest audio, are
             # cheaper than the average; shuffled epochs calibrate right the first time
             "recalibrated": not shortest_first}
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        _resume(cfg, ckpt, model, opt, state)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    task = _CTCTask(cfg, model, opt, corpus, device, shortest_first, TrainLog(out / "train_log.csv",
                                                                              TEACHER_LOG_COLUMNS))
    half = cfg.calibration_steps // 2
    # the first half of the calibration steps pays for CUDA/cuDNN warm-up; the second half is timed
    calibrator = BudgetCalibrator(cfg.time_budget_minutes, half, cfg.calibration_steps - half, int(state["step"]),
                                  cap=False, log=log)
    checkpointer = Checkpointer(ckpt, model, opt, state, extra=lambda: {"torch_rng": torch.get_rng_state()})
    settings = LoopSettings("train teacher", lambda s, t: lr_at(s, t, cfg), cfg.grad_clip, cfg.checkpoint_minutes)
    TrainLoop(task, model.parameters(), opt, state, settings, checkpointer, calibrator, log).run()
    return _save_final(cfg, model, out, state, corpus.hours, device)


def _save_final(cfg: TeacherTrainConfig, model: torch.nn.Module, out: Path, state: dict[str, Any],
                train_hours: float, device: torch.device) -> Path:
    from compress.model_io.hf import save_model_dir

    model.eval()
    final_dir = out / "model"
    save_model_dir(model.to(getattr(torch, cfg.save_dtype)).cpu(), final_dir, do_normalize=True)
    summary = {"steps": state["step"], "epochs": state["epoch"], "wall_s": state["wall_s"],
               "audio_hours_processed": state["audio_seconds"] / 3600, "train_hours": train_hours,
               "device": str(device), "torch": torch.__version__}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    log.info("saved %s (%s)", final_dir, summary)
    return final_dir
