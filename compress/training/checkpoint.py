"""Atomic training checkpoints: written to a temporary file and renamed, so a kill never leaves half a file;
loaded with ``weights_only=True`` (``compress.model_io.safe_load``), never by unpickling arbitrary code."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def atomic_save(obj: dict, path: Path) -> None:
    tmp = Path(path).with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    from compress.model_io.safe_load import load_checkpoint as safe_load

    return safe_load(path)


class Checkpointer:
    """Saves ``{"model", "optimizer", "state"}`` plus ``extra()`` (e.g. the RNG or the grad scaler) to ``path``.

    ``enabled=False`` (ranks other than 0) makes :meth:`save` a no-op.
    """

    def __init__(self, path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 state: dict[str, Any], extra: Callable[[], dict[str, Any]] | None = None,
                 enabled: bool = True) -> None:
        self.path, self.model, self.optimizer, self.state = Path(path), model, optimizer, state
        self.extra = extra
        self.enabled = enabled
        self.saved_step: int | None = None

    def save(self) -> None:
        self.saved_step = int(self.state["step"])
        if not self.enabled:
            return
        obj = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "state": dict(self.state)}
        if self.extra is not None:
            obj.update(self.extra())
        atomic_save(obj, self.path)
