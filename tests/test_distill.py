"""Distillation: the KD loss (hand-computed, padding masked), the student init (exact copies), the schedule,
a full tiny run, resume after SIGKILL, and DistributedDataParallel with 2 CPU processes."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_methods_support import tiny_corpus, tiny_model, tiny_teacher_dir  # noqa: F401 - fixtures

from core.errors import FootprintError
from compress.methods.distill import (
    build_student,
    feature_penalty,
    kd_loss,
    lr_at,
    select_layers,
)

pytestmark = pytest.mark.slow  # started first under pytest-xdist (tests/conftest.py)

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- loss
def test_kd_loss_hand_computed() -> None:
    # frame 0: teacher (0.75, 0.25) vs student (0.5, 0.5); frame 1: student == teacher (KL 0)
    t = torch.tensor([[[math.log(3.0), 0.0], [1.0, 2.0]]])
    s = torch.tensor([[[0.0, 0.0], [1.0, 2.0]]])
    mask = torch.tensor([[True, True]])
    kl0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_loss(s, t, mask).item() == pytest.approx(kl0 / 2, rel=1e-6)
    # temperature 2: softened distributions, scaled by T^2
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    kl_t = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    assert kd_loss(s, t, mask, temperature=2.0).item() == pytest.approx(4 * kl_t / 2, rel=1e-6)
    # masked frame 1 out: the mean is over the one real frame
    assert kd_loss(s, t, torch.tensor([[True, False]])).item() == pytest.approx(kl0, rel=1e-6)


def test_kd_loss_ignores_padded_frames() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(2, 6, 32), torch.randn(2, 6, 32)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    ref = kd_loss(s, t, mask)
    s2, t2 = s.clone(), t.clone()
    s2[1, 4:] = 50 * torch.randn(2, 32)
    t2[1, 4:] = 50 * torch.randn(2, 32)
    assert kd_loss(s2, t2, mask).item() == pytest.approx(ref.item(), rel=1e-6)
    # and it is the mean over the 10 real frames
    per = [torch.sum(torch.softmax(t[b, i], -1) * (torch.log_softmax(t[b, i], -1) - torch.log_softmax(s[b, i], -1)))
           for b in range(2) for i in range(6) if mask[b, i]]
    assert ref.item() == pytest.approx(float(sum(per) / 10), rel=1e-5)


def test_feature_penalty_masks_padding() -> None:
    feats = torch.ones(2, 3, 4)
    feats[1, :, 2:] = 100.0  # padding
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    assert feature_penalty(feats, mask).item() == pytest.approx(1.0)


def test_kd_gradient_flows_only_through_student() -> None:
    s = torch.randn(1, 3, 32, requires_grad=True)
    t = torch.randn(1, 3, 32, requires_grad=True)
    kd_loss(s, t.detach(), torch.ones(1, 3, dtype=torch.bool)).backward()
    assert s.grad is not None and t.grad is None


# ----------------------------------------------------------------------------------------------- init
def test_select_layers() -> None:
    assert select_layers(24, 12) == list(range(0, 24, 2))  # the paper's 24 -> 12
    assert select_layers(12, 4) == [0, 3, 6, 9]
    assert select_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert select_layers(12, 5) == [0, 2, 4, 7, 9]
    assert select_layers(12, 3, "last") == [9, 10, 11]
    with pytest.raises(FootprintError):
        select_layers(12, 13)


@pytest.mark.parametrize("init,expected", [("alternate", [0, 3]), ("last", [4, 5])])
def test_student_copies_every_kept_tensor(init: str, expected: list[int]) -> None:
    teacher = tiny_model(layers=6, seed=3)
    student, kept = build_student(teacher, 2, init)
    assert kept == expected
    assert student.config.num_hidden_layers == 2 and len(student.wav2vec2.encoder.layers) == 2
    t_sd, s_sd = teacher.state_dict(), student.state_dict()
    for key, val in s_sd.items():
        src = key
        if key.startswith("wav2vec2.encoder.layers."):
            i, rest = key.split(".", 4)[3], key.split(".", 4)[4]
            src = f"wav2vec2.encoder.layers.{kept[int(i)]}.{rest}"
        assert torch.equal(val, t_sd[src]), key
    # the two the paper's code left random: positional conv (weight-norm g and v) and the final layer norm
    tp, sp = teacher.wav2vec2.encoder.pos_conv_embed.conv, student.wav2vec2.encoder.pos_conv_embed.conv
    assert torch.equal(sp.parametrizations.weight.original0, tp.parametrizations.weight.original0)
    assert torch.equal(sp.parametrizations.weight.original1, tp.parametrizations.weight.original1)
    assert torch.equal(sp.weight, tp.weight)
    assert torch.equal(student.wav2vec2.encoder.layer_norm.weight, teacher.wav2vec2.encoder.layer_norm.weight)
    assert torch.equal(student.wav2vec2.encoder.layer_norm.bias, teacher.wav2vec2.encoder.layer_norm.bias)
    # a dropped layer really is gone: student layer 1 differs from the teacher's layer 1
    assert not torch.equal(student.wav2vec2.encoder.layers[1].attention.q_proj.weight,
                           teacher.wav2vec2.encoder.layers[1].attention.q_proj.weight)


def test_full_depth_student_is_the_teacher() -> None:
    teacher = tiny_model(layers=3, seed=4)
    student, kept = build_student(teacher)
    assert kept == [0, 1, 2]
    x = torch.randn(2, 8000)
    with torch.no_grad():
        assert torch.equal(teacher(x).logits, student.eval()(x).logits)


def test_maxpool_student_keeps_first_convs() -> None:
    from compress.methods.maxpool import MaxPoolFeatureLayer

    teacher = tiny_model(layers=4, seed=5)
    student, _ = build_student(teacher, 2, student_arch="maxpool-conv4")
    convs = student.wav2vec2.feature_extractor.conv_layers
    assert [isinstance(c, MaxPoolFeatureLayer) for c in convs] == [False] * 4 + [True] * 3
    for i in range(4):
        assert torch.equal(convs[i].conv.weight, teacher.wav2vec2.feature_extractor.conv_layers[i].conv.weight)
    assert student.config.maxpool_layers == [4, 5, 6]


def test_student_name_keeps_a_continued_variants_recipe() -> None:
    from compress.methods.distill import DistillConfig, student_name

    assert student_name(DistillConfig(out_dir="x"), 4) == "distill-L4"
    assert student_name(DistillConfig(out_dir="x", student_arch="maxpool-conv4"), 12) == "maxpool-conv4-L12"
    # more epochs on a shipped max-pool student: still that student, not a "distill-L12"
    assert student_name(DistillConfig(out_dir="x", init_from="d"), 12, "maxpool-conv4-L12") == "maxpool-conv4-L12"
    assert student_name(DistillConfig(out_dir="x", recipe="prune-structured-50"), 12, "distill-L12") \
        == "prune-structured-50"


def test_lr_schedule() -> None:
    total, warm, peak = 100, 20, 1e-3
    assert lr_at(0, total, warm, peak) == pytest.approx(peak / 20)
    assert lr_at(19, total, warm, peak) == pytest.approx(peak)
    assert lr_at(60, total, warm, peak) == pytest.approx(peak * 0.5)
    assert lr_at(100, total, warm, peak) == 0.0


# ----------------------------------------------------------------------------------------------- runs
def _cmd(teacher: Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "compress", "compress", "distill", "--model", str(teacher), "--layers", "2",
            "--data", str(corpus), "--val-utterances", "4", "--lr", "1e-3", "--batch-seconds", "3",
            "--threads", "1", "--device", "cpu", "--out", str(out), *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env.setdefault("TQDM_DISABLE", "1")
    return env


def test_distill_resumes_after_sigkill(tiny_teacher_dir: Path, tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "student"
    cmd = _cmd(tiny_teacher_dir, tiny_corpus, out, "--epochs", "12", "--checkpoint-steps", "3")
    ckpt = out / ".work" / "checkpoint.pt"
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert ckpt.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (out / "variant.json").exists(), "the first run finished before it could be killed"
    saved = torch.load(ckpt, weights_only=True)
    step = saved["state"]["step"]
    assert step >= 3 and step < saved["state"]["total_steps"]

    res = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"resumed from {ckpt} at step {step}" in res.stderr
    rec = json.loads((out / "variant.json").read_text())
    tr = rec["training"]
    assert tr["finished"] and tr["steps"] == tr["total_steps"] == 12 * tr["steps_per_epoch"]
    assert rec["recipe"] == "distill-L2" and rec["transformer_layers"] == 2
    assert rec["config"]["init"] == "alternate" and rec["config"]["train_hours"] > 0
    rows = (out / "train_log.csv").read_text().strip().splitlines()
    assert rows[0].split(",") == ["epoch", "step", "train_loss", "kd_loss", "feature_penalty", "ctc_loss", "lr",
                                  "dev_wer", "dev_cer", "wall_s", "audio_hours", "energy_kwh", "co2_kg"]
    assert [r.split(",")[0] for r in rows[1:]] == [str(e) for e in range(1, 13)]
    assert not (out / ".work").exists()  # checkpoint and cache removed once finished
    # a third run finds the finished student and does nothing
    from compress.methods.distill import DistillConfig, distill

    again = distill(DistillConfig(out_dir=str(out), teacher=str(tiny_teacher_dir), layers=2, data=str(tiny_corpus),
                                  device="cpu"))
    assert again.already_done and again.steps == tr["steps"]


def test_ddp_two_processes_stay_in_sync(tiny_teacher_dir: Path, tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "ddp"
    cmd = _cmd(tiny_teacher_dir, tiny_corpus, out, "--epochs", "1", "--max-steps", "3")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                str(29500 + os.getpid() % 1000), "-m"] + cmd[2:]
    res = subprocess.run(torchrun, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    tr = json.loads((out / "variant.json").read_text())["training"]
    assert tr["world_size"] == 2 and tr["steps"] == 3
    assert tr["ranks_in_sync"] is True
    line = next(ln for ln in res.stderr.splitlines() if "ranks' parameters" in ln)
    digests = line.split("(")[-1].rstrip(")").split(", ")
    assert len(digests) == 2 and digests[0] == digests[1]


def test_max_minutes_fits_the_schedule_to_the_budget(tiny_teacher_dir: Path, tiny_corpus: Path,  # noqa: F811
                                                     tmp_path: Path) -> None:
    from compress.methods.distill import DistillConfig, distill

    cfg = DistillConfig(out_dir=str(tmp_path / "budget"), teacher=str(tiny_teacher_dir), layers=2,
                        data=str(tiny_corpus), val_utterances=4, epochs=300, batch_seconds=3, threads=1,
                        device="cpu", max_minutes=0.08, calibration_steps=5, lr=1e-3)
    t0 = time.time()
    res = distill(cfg)
    tr = json.loads((tmp_path / "budget" / "variant.json").read_text())["training"]
    assert tr["finished"] and tr["truncated_by_budget"] and res.steps == tr["total_steps"]
    assert res.steps < 300 * tr["steps_per_epoch"]
    assert time.time() - t0 < 60
