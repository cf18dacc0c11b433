"""The one training loop: epochs of batches, the learning-rate schedule, AMP (with loss scaling for fp16),
gradient clipping, the time-budget calibration, periodic atomic checkpoints and the progress bar.

A task (teacher CTC training, distillation) plugs in through :class:`TrainTask`: which batches an epoch has on
this rank, the loss of one batch, and what to log after a step and at the end of an epoch.  The loop's
``state`` is a plain dict stored in the checkpoint: ``step``, ``epoch``, ``batch_in_epoch``, ``total_steps``,
``wall_s``, ``audio_seconds``, ``calibrated`` and whatever the task keeps there.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from compress.training.checkpoint import Checkpointer
from compress.training.schedule import BudgetCalibrator
from core.distributed import DistContext


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``--amp``: auto (bf16 on GPUs that have it, else fp16; off on CPU) | bf16 | fp16 | none."""
    if mode == "bf16":  # asked for explicitly: also on CPU (faster per step on AVX512-BF16/AMX CPUs)
        return torch.bfloat16
    if device.type != "cuda" or mode == "none":
        return None
    if mode == "fp16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@dataclass
class StepResult:
    loss: torch.Tensor  # what to backpropagate
    audio_seconds: float  # audio in this step (all ranks together)
    stop: bool = False  # the task wants the run to end after this step (e.g. a hard time limit)


class TrainTask(Protocol):
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches (utterance indices) of ``epoch``, the same on every call for one epoch."""

    def step(self, idx: list[int]) -> StepResult:
        """Forward pass and loss of one batch (under the task's autocast)."""

    def after_step(self, state: dict[str, Any], bar: Any) -> None:
        """Logging after the optimizer step (``state["step"]`` already counts it)."""

    def end_of_epoch(self, state: dict[str, Any], complete: bool) -> None:
        """An epoch ended (``complete``) or the run stopped inside one; before ``state["epoch"]`` moves on."""


@dataclass
class LoopSettings:
    desc: str  # progress bar label
    lr: Callable[[int, int], float]  # (step, total_steps) -> learning rate
    grad_clip: float = 0.0  # clip the gradient norm to this (0: off)
    checkpoint_minutes: float = 5.0
    checkpoint_steps: int | None = None
    checkpoint_each_epoch: bool = False


class TrainLoop:
    def __init__(self, task: TrainTask, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 state: dict[str, Any], settings: LoopSettings, checkpointer: Checkpointer,
                 calibrator: BudgetCalibrator, log: logging.Logger, dist: DistContext | None = None,
                 scaler: torch.amp.GradScaler | None = None) -> None:
        self.task, self.params, self.opt, self.state = task, list(params), optimizer, state
        self.settings, self.ckpt, self.calibrator, self.log = settings, checkpointer, calibrator, log
        self.dist = dist or DistContext()
        self.scaler = scaler or torch.amp.GradScaler("cuda", enabled=False)

    def _optimize(self, idx: list[int]) -> StepResult:
        state = self.state
        for g in self.opt.param_groups:
            g["lr"] = self.settings.lr(state["step"], state["total_steps"])
        res = self.task.step(idx)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(res.loss).backward()
        if self.settings.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.params, self.settings.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        return res

    def _checkpoint_due(self, last: float) -> bool:
        s = self.settings
        return (time.perf_counter() - last > s.checkpoint_minutes * 60
                or bool(s.checkpoint_steps and self.state["step"] % s.checkpoint_steps == 0))

    def _run_epoch(self, bar: Any, wall0: float, last_ckpt: float) -> tuple[bool, float]:
        """Steps through the current epoch (or until the end of the run); (stop requested, last checkpoint time)."""
        state = self.state
        batches = self.task.epoch_batches(state["epoch"])
        stop = False
        while state["batch_in_epoch"] < len(batches) and state["step"] < state["total_steps"] and not stop:
            self.calibrator.update(state)
            res = self._optimize(batches[state["batch_in_epoch"]])
            state["step"] += 1
            state["batch_in_epoch"] += 1
            state["audio_seconds"] += res.audio_seconds
            state["wall_s"] = time.perf_counter() - wall0
            bar.update(1)
            if self.calibrator.update(state):
                bar.total = state["total_steps"]
            self.task.after_step(state, bar)
            if res.stop:
                self.log.warning("time budget reached at step %d of %d: stopping and saving", state["step"],
                                 state["total_steps"])
                state["total_steps"] = state["step"]
                stop = True
            if self._checkpoint_due(last_ckpt):
                self.ckpt.save()
                last_ckpt = time.perf_counter()
        complete = state["batch_in_epoch"] >= len(batches)
        if complete or state["step"] >= state["total_steps"]:
            self.task.end_of_epoch(state, complete)
            if complete:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
            if self.settings.checkpoint_each_epoch:
                self.ckpt.save()
                last_ckpt = time.perf_counter()
        return stop, last_ckpt

    def run(self) -> None:
        """Train until ``state["total_steps"]``; the last state is always checkpointed."""
        from tqdm import tqdm

        state = self.state
        # the wall clock continues across resumes (the budget counts the whole run)
        wall0 = time.perf_counter() - state["wall_s"]
        last_ckpt = time.perf_counter()
        bar = tqdm(total=state["total_steps"], initial=state["step"], desc=self.settings.desc, unit="step",
                   disable=not self.dist.is_main)
        stop = False
        while state["step"] < state["total_steps"] and not stop:
            stop, last_ckpt = self._run_epoch(bar, wall0, last_ckpt)
        bar.close()
        if self.ckpt.saved_step != state["step"]:
            self.ckpt.save()
