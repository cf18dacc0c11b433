"""The training loop shared by teacher training (``compress.train_teacher``) and distillation
(``compress.methods.distill``): data batches, the learning-rate schedules and the time-budget calibration,
atomic checkpoints, and :class:`~compress.training.loop.TrainLoop`, into which each task plugs its step."""
from compress.training.checkpoint import Checkpointer, atomic_save, load_checkpoint
from compress.training.data import collate, evaluate, load_split, make_batches
from compress.training.loop import LoopSettings, StepResult, TrainLoop, TrainTask, amp_dtype, autocast
from compress.training.schedule import BudgetCalibrator, warmup_cosine, warmup_linear

__all__ = ["BudgetCalibrator", "Checkpointer", "LoopSettings", "StepResult", "TrainLoop", "TrainTask", "amp_dtype",
           "atomic_save", "autocast", "collate", "evaluate", "load_checkpoint", "load_split", "make_batches",
           "warmup_cosine", "warmup_linear"]
