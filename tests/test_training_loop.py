"""The shared training loop (``compress.training``) with a toy task: schedules, the budget calibration, atomic
checkpoints and resume, the CSV log writer (``core.train_log``) and the one-process distributed context."""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from compress.training import (
    BudgetCalibrator,
    Checkpointer,
    LoopSettings,
    StepResult,
    TrainLoop,
    load_checkpoint,
    warmup_cosine,
    warmup_linear,
)
from core.distributed import DistContext
from core.train_log import TEACHER_LOG_COLUMNS, TRAIN_LOG_COLUMNS, TrainLog

log = logging.getLogger(__name__)


def test_schedules() -> None:
    assert warmup_linear(0, 100, 20, 1.0) == pytest.approx(1 / 20)
    assert warmup_linear(60, 100, 20, 1.0) == pytest.approx(0.5)
    assert warmup_linear(100, 100, 20, 1.0) == 0.0
    assert warmup_cosine(9, 100, 10, 1.0) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10, 1.0, floor=0.1) == pytest.approx(0.1)
    assert warmup_cosine(0, 100, 0, 1.0) == pytest.approx(1.0)  # no warm-up: one step of it


def test_train_log_appends_and_checks_columns(tmp_path: Path) -> None:
    path = tmp_path / "train_log.csv"
    TrainLog(path, TRAIN_LOG_COLUMNS).write({"epoch": 1, "step": 3, "dev_wer": None})
    TrainLog(path, TRAIN_LOG_COLUMNS).write({"epoch": 2, "step": 6})  # a resumed run continues the file
    rows = list(csv.reader(path.open()))
    assert rows[0] == list(TRAIN_LOG_COLUMNS) and [r[:2] for r in rows[1:]] == [["1", "3"], ["2", "6"]]
    assert rows[1][TRAIN_LOG_COLUMNS.index("dev_wer")] == ""
    with pytest.raises(KeyError):
        TrainLog(path, TRAIN_LOG_COLUMNS).write({"loss": 1.0})
    TrainLog(tmp_path / "off.csv", TEACHER_LOG_COLUMNS, enabled=False).write({"step": 1})


def test_a_metered_run_logs_its_energy_so_far_and_an_older_log_keeps_its_columns(tmp_path) -> None:  # noqa: ANN001
    import csv

    from core.train_log import energy_probe

    readings = iter([(0.5, 0.2), (1.25, 0.5)])
    path = tmp_path / "train_log.csv"
    with energy_probe(lambda: next(readings)):
        TrainLog(path, TRAIN_LOG_COLUMNS).write({"epoch": 1})
        TrainLog(path, TRAIN_LOG_COLUMNS).write({"epoch": 2})
    TrainLog(path, TRAIN_LOG_COLUMNS).write({"epoch": 3})  # unmetered: empty
    rows = list(csv.DictReader(open(path)))
    assert [(r["energy_kwh"], r["co2_kg"]) for r in rows] == [("0.5", "0.2"), ("1.25", "0.5"), ("", "")]
    old = tmp_path / "old.csv"  # begun before the energy columns: continued with its own header
    old.write_text("epoch,step,wall_s\n1,3,10.0\n")
    with energy_probe(lambda: (1.0, 0.4)):
        TrainLog(old, TRAIN_LOG_COLUMNS).write({"epoch": 2, "step": 6, "wall_s": 20.0, "dev_wer": 0.5})
    assert old.read_text() == "epoch,step,wall_s\n1,3,10.0\n2,6,20.0\n"
    assert not (tmp_path / "off.csv").exists()


def test_dist_context_on_one_process() -> None:
    d = DistContext()
    t = torch.tensor([1.0, 2.0])
    assert d.all_reduce(t, op="max") is t and t.tolist() == [1.0, 2.0]
    model = torch.nn.Linear(2, 2)
    assert d.wrap_ddp(model) is model
    assert d.gather("x") == ["x"] and d.broadcast(3) == 3
    d.barrier()
    d.close_own()


def _state(total: int, calibrated: bool = True) -> dict[str, Any]:
    return {"step": 0, "epoch": 0, "batch_in_epoch": 0, "total_steps": total, "wall_s": 0.0, "audio_seconds": 0.0,
            "calibrated": calibrated}


def test_calibrator_fits_the_step_count(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 10.0])  # 2 timed steps in 10 s -> 5 s/step
    monkeypatch.setattr("compress.training.schedule.time.perf_counter", lambda: next(clock))
    budget_min = 1.0  # 60 s, 8 % kept: 55.2 s - 10 s elapsed leaves 9 steps
    for cap, expected in ((False, 12), (True, 10)):
        clock = iter([0.0, 10.0])
        state = _state(10, calibrated=False)
        cal = BudgetCalibrator(budget_min, warmup=1, measure=2, start_step=0, cap=cap, log=log)
        state["step"] = 1
        assert not cal.update(state)
        state["step"], state["wall_s"] = 3, 10.0
        assert cal.update(state) and state["calibrated"]
        assert state["total_steps"] == expected


class _Toy:
    """Fits y = 2x with one weight; one batch = one index."""

    def __init__(self, n: int = 4) -> None:
        self.model = torch.nn.Linear(1, 1, bias=False)
        self.n = n
        self.epochs_ended: list[tuple[int, bool]] = []

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        return [[i] for i in range(self.n)]

    def step(self, idx: list[int]) -> StepResult:
        x = torch.tensor([[float(idx[0] + 1)]])
        return StepResult(((self.model(x) - 2 * x) ** 2).mean(), audio_seconds=1.0)

    def after_step(self, state: dict[str, Any], bar: Any) -> None:
        pass

    def end_of_epoch(self, state: dict[str, Any], complete: bool) -> None:
        self.epochs_ended.append((state["epoch"], complete))


def _run(tmp_path: Path, total: int, toy: _Toy, state: dict[str, Any]) -> Checkpointer:
    opt = torch.optim.SGD(toy.model.parameters(), lr=0.01)
    ckpt = Checkpointer(tmp_path / "checkpoint.pt", toy.model, opt, state, extra=lambda: {"note": torch.ones(1)})
    if ckpt.path.exists():
        saved = load_checkpoint(ckpt.path)
        toy.model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        state.update(saved["state"])
        state["total_steps"] = total  # as the teacher's --extend-steps does
    settings = LoopSettings("toy", lambda s, t: 0.01, grad_clip=1.0, checkpoint_minutes=100, checkpoint_each_epoch=True)
    cal = BudgetCalibrator(None, 1, 1, 0, cap=True, log=log)
    TrainLoop(toy, toy.model.parameters(), opt, state, settings, ckpt, cal, log).run()
    return ckpt


def test_loop_epochs_checkpoint_and_resume(tmp_path: Path) -> None:
    toy = _Toy()
    state = _state(6)
    _run(tmp_path, 6, toy, state)
    assert state["step"] == 6 and state["epoch"] == 1 and state["batch_in_epoch"] == 2
    assert toy.epochs_ended == [(0, True), (1, False)]
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    assert saved["state"]["step"] == 6 and saved["state"]["audio_seconds"] == 6.0 and "note" in saved
    assert not (tmp_path / "checkpoint.tmp").exists()
    # resuming with a longer schedule continues from step 6 inside epoch 1
    toy2 = _Toy()
    state2 = _state(8)
    _run(tmp_path, 8, toy2, state2)
    assert state2["step"] == 8 and state2["epoch"] == 2 and state2["batch_in_epoch"] == 0
    assert toy2.epochs_ended == [(1, True)]
    assert torch.equal(load_checkpoint(tmp_path / "checkpoint.pt")["model"]["weight"], toy2.model.weight.detach())


def test_loop_stops_when_the_task_asks(tmp_path: Path) -> None:
    toy = _Toy()
    step = toy.step
    toy.step = lambda idx: StepResult(step(idx).loss, 1.0, stop=idx[0] == 1)  # type: ignore[method-assign]
    state = _state(100)
    _run(tmp_path, 100, toy, state)
    assert state["step"] == state["total_steps"] == 2 and toy.epochs_ended == [(0, False)]
