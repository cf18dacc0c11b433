"""Learning-rate schedules and the wall-clock budget: a few timed steps fix the total step count."""
from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch

from core.distributed import DistContext


def warmup_cosine(step: int, total: int, warm: int, peak: float, floor: float = 0.0) -> float:
    """Linear warm-up over ``warm`` steps to ``peak``, then cosine decay to ``floor * peak`` at step ``total``."""
    warm = max(1, warm)
    if step < warm:
        return peak * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def warmup_linear(step: int, total: int, warm: int, peak: float) -> float:
    """Linear warm-up over ``warm`` steps to ``peak``, then linear decay to 0 at step ``total``."""
    if step < warm:
        return peak * (step + 1) / warm
    return peak * max(0.0, (total - step) / max(1, total - warm))


class BudgetCalibrator:
    """Fits ``state["total_steps"]`` to ``budget_minutes`` of training-loop wall time.

    After ``warmup`` steps (which pay for allocator and kernel warm-up) the next ``measure`` steps are timed;
    the slowest rank's step time then fixes the step count, keeping ``reserve`` of the budget for evaluation and
    checkpoints.  ``cap``: never more steps than planned (distillation's epochs); else the budget alone decides.
    ``state["calibrated"]`` is stored in the checkpoint, so a resumed run keeps its schedule.

    A run whose first epoch goes shortest first (cheaper steps than the average) sets ``state["recalibrated"]``
    False: the first shuffled steps of epoch 1 are timed once more and correct the count.
    """

    def __init__(self, budget_minutes: float | None, warmup: int, measure: int, start_step: int, cap: bool,
                 log: logging.Logger, dist: DistContext | None = None, reserve: float = 0.08) -> None:
        self.budget_s = None if budget_minutes is None else budget_minutes * 60
        self.warmup, self.measure, self.start, self.cap = warmup, max(1, measure), start_step, cap
        self.log, self.dist, self.reserve = log, dist or DistContext(), reserve
        self.t0: float | None = None
        self.recal_t0: float | None = None

    def _fit(self, state: dict[str, Any], per_step: float, elapsed: float) -> None:
        t = torch.tensor([per_step, elapsed], dtype=torch.float64)
        self.dist.all_reduce(t, op="max")
        left = self.budget_s * (1 - self.reserve) - t[1].item()
        fit = state["step"] + int(left / t[0].item())
        state["total_steps"] = max(state["step"] + 1, min(state["total_steps"], fit) if self.cap else fit)

    def update(self, state: dict[str, Any]) -> bool:
        """Call before and after each step; True when ``state["total_steps"]`` changed."""
        if self.budget_s is None:
            return False
        if not state["calibrated"]:
            if self.t0 is None and state["step"] == self.start + self.warmup:
                self.t0 = time.perf_counter()
            elif self.t0 is not None and state["step"] >= self.start + self.warmup + self.measure:
                per_step = (time.perf_counter() - self.t0) / self.measure
                self._fit(state, per_step, state["wall_s"])
                state["calibrated"] = True
                self.log.info("calibrated: %.3f s/step -> %d steps in %.1f min", per_step, state["total_steps"],
                              self.budget_s / 60)
                return True
            return False
        if state.get("recalibrated", True) or state["epoch"] < 1:
            return False
        if self.recal_t0 is None and state["batch_in_epoch"] == self.warmup:
            self.recal_t0 = time.perf_counter()
        elif self.recal_t0 is not None and state["batch_in_epoch"] >= self.warmup + self.measure:
            per_step = (time.perf_counter() - self.recal_t0) / self.measure
            self._fit(state, per_step, state["wall_s"])
            state["recalibrated"] = True
            self.log.info("recalibrated on shuffled batches: %.3f s/step -> %d steps", per_step,
                          state["total_steps"])
            return True
        return False
