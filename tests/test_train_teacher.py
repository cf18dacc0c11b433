"""Teacher training: a tiny model trains, checkpoints, survives SIGKILL and resumes where it stopped."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.data.synth.corpus import SynthConfig, ensure_corpus
from helpers import TINY_OVERRIDES
from compress.train_teacher import TeacherTrainConfig, lr_at, make_batches

pytestmark = pytest.mark.slow  # started first under pytest-xdist (tests/conftest.py)

TINY = dict(TINY_OVERRIDES, num_hidden_layers=2, conv_dim=list(TINY_OVERRIDES["conv_dim"]))  # JSON for the CLI
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_corpus(SynthConfig(hours_train=0.01, dev_utterances=4, n_train_speakers=4, n_dev_speakers=2),
                         ("train-clean", "dev-clean"), root=tmp_path_factory.mktemp("c"), progress=False)


def test_schedule_and_batches() -> None:
    cfg = TeacherTrainConfig(out_dir="x", peak_lr=1e-3, warmup_fraction=0.1)
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 9 and lrs[-1] < 1e-4
    import random

    lengths = [5, 1, 4, 2, 3, 9]
    first = make_batches(lengths, 8, random.Random(0), shortest_first=True)
    assert [lengths[b[0]] for b in first] == sorted(lengths[b[0]] for b in first)  # curriculum
    assert sorted(i for b in first for i in b) == list(range(6))


def _cmd(corpus: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "compress", "compress", "train-teacher", "--out", str(out), "--corpus", str(corpus),
            "--steps", str(steps), "--checkpoint-minutes", "0", "--eval-every", "100000", "--device", "cpu",
            "--threads", "1", "--batch-seconds", "12", "--dev-eval-utterances", "2",
            "--arch-overrides", json.dumps(TINY)]


def test_resumes_after_sigkill(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(_cmd(corpus, out, 120), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = out / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["state"]["step"]
    assert 0 < killed_at < 120
    done = subprocess.run(_cmd(corpus, out, 120), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed from {ckpt} at step {killed_at} (" in done.stderr, done.stderr[-2000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 120
    assert (out / "model" / "config.json").exists() and (out / "train_log.csv").exists()


def test_bf16_autocast_on_cpu_trains_fp32_weights(corpus: Path, tmp_path: Path) -> None:
    """``--amp bf16`` runs the CPU step under bf16 autocast; the saved weights stay fp32 and do change."""
    from compress.model_io.hf import load_model_dir
    from compress.train_teacher import train_teacher

    def run(out: Path, amp: str) -> Path:
        return train_teacher(TeacherTrainConfig(
            out_dir=str(out), corpus_root=str(corpus), steps=3, eval_every=100000, device="cpu", threads=1,
            batch_seconds=12, dev_eval_utterances=2, arch_overrides=dict(TINY), amp=amp, checkpoint_minutes=100))

    bf16 = load_model_dir(run(tmp_path / "bf16", "bf16"))[0]
    fp32 = load_model_dir(run(tmp_path / "fp32", "none"))[0]
    w_bf16 = bf16.lm_head.weight
    assert w_bf16.dtype == torch.float32
    # same seed and data: the two runs differ only by the autocast rounding, so the weights are close but not equal
    diff = (w_bf16 - fp32.lm_head.weight).abs().max().item()
    assert 0 < diff < 1e-2


def test_time_budget_is_recalibrated_on_shuffled_batches(corpus: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Epoch 0 (shortest first) calibrates the step count; the first shuffled steps of epoch 1 correct it once."""
    import logging

    from compress.train_teacher import train_teacher

    caplog.set_level(logging.INFO, logger="compress.train_teacher")
    train_teacher(TeacherTrainConfig(
        out_dir=str(tmp_path / "run"), corpus_root=str(corpus), time_budget_minutes=0.1, calibration_steps=4,
        eval_every=100000, device="cpu", threads=1, batch_seconds=3, dev_eval_utterances=2,
        arch_overrides=dict(TINY), checkpoint_minutes=100))
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("calibrated:") for m in messages) == 1
    assert sum(m.startswith("recalibrated on shuffled batches") for m in messages) == 1
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["state"]
    assert state["recalibrated"] and state["epoch"] >= 1 and state["step"] == state["total_steps"]


def test_continuation_with_frozen_feature_encoder(corpus: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """``--init-from`` + ``--freeze-feature-encoder``: the conv encoder stays as loaded, the rest trains on; a
    continuation has no shortest-first epoch, so its time budget is calibrated once, never recalibrated."""
    import logging

    from compress.model_io.hf import load_model_dir
    from compress.train_teacher import train_teacher

    caplog.set_level(logging.INFO, logger="compress.train_teacher")

    common = dict(corpus_root=str(corpus), eval_every=100000, device="cpu", threads=1, batch_seconds=12,
                  dev_eval_utterances=2, arch_overrides=dict(TINY), checkpoint_minutes=100)
    first = load_model_dir(train_teacher(TeacherTrainConfig(out_dir=str(tmp_path / "a"), steps=2, **common)))[0]
    cont_dir = train_teacher(TeacherTrainConfig(out_dir=str(tmp_path / "b"), steps=3, peak_lr=1e-2,
                                                init_from=str(tmp_path / "a" / "model"),
                                                freeze_feature_encoder=True, **common))
    cont = load_model_dir(cont_dir)[0]
    before, after = first.state_dict(), cont.state_dict()
    conv = [k for k in before if k.startswith("wav2vec2.feature_extractor.")]
    assert conv and all(torch.equal(before[k], after[k]) for k in conv)
    assert not torch.equal(before["lm_head.weight"], after["lm_head.weight"])
    assert json.loads((tmp_path / "b" / "train_config.json").read_text())["freeze_feature_encoder"] is True
    train_teacher(TeacherTrainConfig(out_dir=str(tmp_path / "c"), init_from=str(tmp_path / "a" / "model"),
                                     time_budget_minutes=0.1, calibration_steps=4,
                                     **dict(common, batch_seconds=3)))
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("calibrated:") for m in messages) == 1
    assert not any(m.startswith("recalibrated") for m in messages)
    assert torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)["state"]["epoch"] >= 1
