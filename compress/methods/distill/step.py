"""One distillation step (student forward, teacher logits, the loss normalised over all ranks' frames) and the
per-epoch log row; plugged into :class:`compress.training.TrainLoop`."""
from __future__ import annotations

import logging
import random
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.methods.distill.cache import TeacherCache, teacher_logits
from compress.methods.distill.config import DistillConfig
from compress.methods.distill.data import DistillData
from compress.methods.distill.loss import feature_penalty_terms, frame_mask_from_lengths, kd_loss_terms
from compress.training import StepResult, autocast, collate, evaluate, make_batches, warmup_linear
from core.distributed import DistContext
from core.train_log import TrainLog

log = logging.getLogger("compress.methods.distill")

ZERO_ACC = {"n": 0, "loss": 0.0, "kd": 0.0, "pen": 0.0, "ctc": 0.0}


def lr_at(step: int, total: int, warm: int, peak: float) -> float:
    """Linear warm-up over ``warm`` steps to ``peak``, then linear decay to 0 at step ``total``."""
    return warmup_linear(step, total, warm, peak)


def _fmt_epoch(e: float) -> str:
    return str(int(e)) if abs(e - round(e)) < 1e-9 else f"{e:.3f}"


def _evaluate(model: nn.Module, audios: list[np.ndarray], texts: list[str], do_normalize: bool,
              device: torch.device, batch_seconds: float) -> tuple[float | None, float | None]:
    if not audios:
        return None, None
    return evaluate(model, audios, texts, device, do_normalize, batch_seconds)


class DistillTask:
    """The student learns from the teacher's logits (cached, or computed on the fly without a cache)."""

    def __init__(self, cfg: DistillConfig, student: nn.Module, model: nn.Module, teacher: nn.Module | None,
                 cache: TeacherCache | None, data: DistillData, do_norm: bool, group_norm: bool, d: DistContext,
                 amp: torch.dtype | None, opt: torch.optim.Optimizer, steps_per_epoch: int,
                 train_log: TrainLog) -> None:
        self.cfg, self.student, self.model, self.teacher, self.cache = cfg, student, model, teacher, cache
        self.data, self.do_norm, self.group_norm, self.d, self.amp = data, do_norm, group_norm, d, amp
        self.opt, self.steps_per_epoch, self.train_log = opt, steps_per_epoch, train_log
        self.lengths = [len(a) for a in data.audios]
        self.state: dict[str, Any] = {}
        self.t_start = time.perf_counter()
        self.last_kd = 0.0
        self.feats: dict[str, torch.Tensor] = {}
        self._hook = student.wav2vec2.feature_extractor.register_forward_hook(
            lambda _m, _i, o: self.feats.__setitem__("x", o))

    def start(self, state: dict[str, Any]) -> None:
        """Just before the loop runs: --max-minutes counts from here (across resumes), not data loading or the
        one-off teacher pass, which the first student of a shared cache would otherwise pay alone."""
        self.state = state
        self.t_start = time.perf_counter() - state["wall_s"]

    def close(self) -> None:
        self._hook.remove()

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        # every rank takes every K-th batch of the same shuffled epoch
        rng = random.Random(self.cfg.seed * 1000 + epoch)
        batches = make_batches(self.lengths, int(self.cfg.batch_seconds * 16000), rng, shortest_first=False)
        return batches[self.d.rank::self.d.world_size][: self.steps_per_epoch]

    def step(self, idx: list[int]) -> StepResult:
        cfg, d, device = self.cfg, self.d, self.d.device
        x, mask, y = collate(self.data.audios, self.data.labels, idx, device, normalize=self.do_norm)
        attn = None if self.group_norm else mask
        with autocast(device, self.amp):
            outp = self.model(x, attention_mask=attn, labels=y if cfg.ctc_weight > 0 else None)
        s_logits = outp.logits
        frames = s_logits.shape[1]
        fmask = frame_mask_from_lengths(self.student, mask.sum(-1), frames)
        t_logits = teacher_logits(self.teacher, self.cache, self.data.keys, idx, x, attn, frames, device, self.amp)
        kd_sum, n_frames = kd_loss_terms(s_logits, t_logits, fmask, cfg.temperature)
        pen_sum, _ = feature_penalty_terms(self.feats["x"], fmask)
        ctc = outp.loss if cfg.ctc_weight > 0 else torch.zeros((), device=device)
        over = cfg.max_minutes is not None and (time.perf_counter() - self.t_start) > cfg.max_minutes * 60
        stats = torch.tensor([float(n_frames), float(kd_sum.detach()), float(pen_sum.detach()),
                              float(ctc.detach()), float(sum(self.lengths[i] for i in idx)) / 16000,
                              1.0 if (over and d.is_main) else 0.0], dtype=torch.float64)
        d.all_reduce(stats)
        denom = stats[0].item() / d.world_size  # DDP averages over ranks: this gives sum / all frames
        loss = (kd_sum + cfg.feature_penalty_weight * pen_sum) / max(denom, 1.0) + cfg.ctc_weight * ctc
        self._accumulate(stats)
        return StepResult(loss, stats[4].item(), stop=stats[5].item() > 0)

    def _accumulate(self, stats: torch.Tensor) -> None:
        g_frames = max(stats[0].item(), 1.0)
        kd_v, pen_v = stats[1].item() / g_frames, stats[2].item() / g_frames
        ctc_v = stats[3].item() / self.d.world_size
        acc = self.state["acc"]
        acc["n"] += 1
        acc["kd"] += kd_v
        acc["pen"] += pen_v
        acc["ctc"] += ctc_v
        acc["loss"] += kd_v + self.cfg.feature_penalty_weight * pen_v + self.cfg.ctc_weight * ctc_v
        self.last_kd = kd_v

    def after_step(self, state: dict[str, Any], bar: Any) -> None:
        if state["step"] % 10 == 0:
            bar.set_postfix(kd=f"{self.last_kd:.3f}", lr=f"{self.opt.param_groups[0]['lr']:.1e}")

    def end_of_epoch(self, state: dict[str, Any], complete: bool) -> None:
        """The epoch's row of train_log.csv (validation WER on rank 0); the loss accumulators start over."""
        if self.d.is_main:
            self._write_row(state, state["epoch"] + state["batch_in_epoch"] / self.steps_per_epoch)
        self.d.barrier()
        state["acc"] = dict(ZERO_ACC)

    def _write_row(self, state: dict[str, Any], epoch_label: float) -> None:
        cfg, acc = self.cfg, state["acc"]
        n = max(1, acc["n"])
        wer, cer = _evaluate(self.student, self.data.val_audios, self.data.val_texts, self.do_norm,
                             self.d.device, cfg.eval_batch_seconds)
        state["val_wer"] = wer
        self.train_log.write({
            "epoch": _fmt_epoch(epoch_label), "step": state["step"], "train_loss": f"{acc['loss'] / n:.5f}",
            "kd_loss": f"{acc['kd'] / n:.5f}", "feature_penalty": f"{acc['pen'] / n:.5f}",
            "ctc_loss": f"{acc['ctc'] / n:.5f}" if cfg.ctc_weight > 0 else "",
            "lr": f"{self.opt.param_groups[0]['lr']:.4e}", "dev_wer": None if wer is None else f"{wer:.4f}",
            "dev_cer": None if cer is None else f"{cer:.4f}", "wall_s": f"{state['wall_s']:.1f}",
            "audio_hours": f"{state['audio_seconds'] / 3600:.4f}"})
        log.info("epoch %s (step %d): loss %.4f (kd %.4f, feature penalty %.4f) validation WER %s",
                 _fmt_epoch(epoch_label), state["step"], acc["loss"] / n, acc["kd"] / n, acc["pen"] / n,
                 "n/a" if wer is None else f"{100 * wer:.2f}%")
