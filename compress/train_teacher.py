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

import csv
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from core.data.librispeech import Manifest, load_audio, read_subset
from core.text import encode

log = logging.getLogger(__name__)


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
    # bf16 autocast: "auto" = on CUDA only; "bf16" also on CPU (x1.25 per step on an AVX512-BF16 EPYC,
    # measured with 60-s batches; weights and optimizer state stay fp32); "none" = fp32 everywhere
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
    # keep the conv feature encoder fixed (as wav2vec 2.0 fine-tuning does): 1.62 -> 1.23 s per 60-s bf16 step
    # on this 2-core CPU (median of 2 x 5 steps); worth it once the features are learnt, not from scratch
    freeze_feature_encoder: bool = False


def _decode_one(path: str) -> np.ndarray:
    import soundfile as sf

    audio, _ = sf.read(path, dtype="int16")
    return audio


def load_split(manifest: Manifest, jobs: int | None = None, max_seconds: float | None = None
               ) -> tuple[list[np.ndarray], list[list[int]], list[str]]:
    """Decode a subset into memory as int16 (the corpus is 16 kHz mono FLAC), with label ids."""
    from tqdm import tqdm

    utts = [u for u in manifest.utterances if max_seconds is None or u.duration_s <= max_seconds]
    if any(u.sample_rate != 16000 or u.channels != 1 for u in utts):
        audios = [(load_audio(u) * 32767).astype(np.int16) for u in tqdm(utts, desc="decode")]
    else:
        with get_context("fork").Pool(jobs or os.cpu_count() or 1) as pool:
            audios = list(tqdm(pool.imap(_decode_one, [u.path for u in utts], chunksize=32), total=len(utts),
                               desc=f"decode {manifest.subset}", unit="utt"))
    return audios, [encode(u.transcript) for u in utts], [u.transcript for u in utts]


def make_batches(lengths: list[int], batch_samples: int, rng: random.Random, shortest_first: bool
                 ) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, cur = [], []
    for i in order:
        if cur and lengths[i] * (len(cur) + 1) > batch_samples:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    if not shortest_first:
        rng.shuffle(batches)
    return batches


def lr_at(step: int, total: int, cfg: TeacherTrainConfig) -> float:
    warm = max(1, int(cfg.warmup_fraction * total))
    if step < warm:
        return cfg.peak_lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    floor = cfg.min_lr_fraction
    return cfg.peak_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def collate(audios: list[np.ndarray], labels: list[list[int]], idx: list[int], device: torch.device,
            normalize: bool = True):
    """Padded batch (x, attention mask, labels padded with -100); ``normalize``: per-utterance zero mean, unit var."""
    from core.inference import pad_batch

    # models without waveform normalisation (fairseq big_960h) take the raw scale
    x, mask = pad_batch([audios[i].astype(np.float32) / 32768.0 for i in idx], normalize)
    m = max(len(labels[i]) for i in idx)
    y = np.full((len(idx), m), -100, np.int64)
    for r, i in enumerate(idx):
        y[r, : len(labels[i])] = labels[i]
    return (torch.from_numpy(x).to(device, non_blocking=True), torch.from_numpy(mask).to(device),
            torch.from_numpy(y).to(device))


def evaluate(model, audios, transcripts, device: torch.device, do_normalize: bool = True,  # noqa: ANN001
             max_batch_seconds: float = 400.0) -> tuple[float, float]:
    """Greedy dev WER/CER of int16 ``audios``; the model's train/eval mode is restored afterwards."""
    from core.inference import Transcriber
    from core.scoring import score

    was_training = model.training
    tr = Transcriber(model, do_normalize=do_normalize, device=device, batch_size=16,
                     max_batch_seconds=max_batch_seconds)
    hyps = tr.transcribe([a.astype(np.float32) / 32768.0 for a in audios])
    model.train(was_training)
    s = score(transcripts, hyps)
    return s.wer, s.cer


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_teacher(cfg: TeacherTrainConfig) -> Path:
    from tqdm import tqdm
    from transformers import Wav2Vec2ForCTC

    from core.arch import wav2vec2_config

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    if cfg.corpus_root is None:
        from core.data.synth.corpus import SynthConfig, ensure_corpus

        root = ensure_corpus(SynthConfig(hours_train=cfg.hours_train), (cfg.train_subset, cfg.dev_subset))
    else:
        root = Path(cfg.corpus_root)
    train_m = read_subset(root / "LibriSpeech" / cfg.train_subset)
    dev_m = read_subset(root / "LibriSpeech" / cfg.dev_subset).subset_of(cfg.dev_eval_utterances)
    audios, labels, _ = load_split(train_m, cfg.decode_jobs, cfg.max_utterance_seconds)
    dev_audios, _, dev_texts = load_split(dev_m, cfg.decode_jobs)
    lengths = [len(a) for a in audios]
    train_hours = sum(lengths) / 16000 / 3600
    log.info("train: %d utterances, %.2f h; dev: %d utterances", len(audios), train_hours, len(dev_audios))

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = Wav2Vec2ForCTC(wav2vec2_config(cfg.arch, **cfg.arch_overrides)).to(device)
    if cfg.init_from:
        from compress.model_io.hf import load_model_dir

        model.load_state_dict(load_model_dir(cfg.init_from)[0].state_dict())
        log.info("initialised from %s", cfg.init_from)
    if cfg.freeze_feature_encoder:
        model.freeze_feature_encoder()
        log.info("conv feature encoder frozen")
    shortest_first = cfg.init_from is None if cfg.shortest_first is None else cfg.shortest_first
    model.train()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.peak_lr, betas=(0.9, 0.98), eps=1e-6)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "total_steps": cfg.steps, "audio_seconds": 0.0,
             "wall_s": 0.0, "calibrated": cfg.time_budget_minutes is None,
             # only a shortest-first epoch 0 miscalibrates the budget (shuffled epochs calibrate right first time)
             "recalibrated": not shortest_first}
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
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
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    log_path = out / "train_log.csv"
    new_log = not log_path.exists()
    log_file = open(log_path, "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(["step", "epoch", "loss", "lr", "dev_wer", "dev_cer", "wall_s", "audio_hours"])

    def save_checkpoint() -> None:
        _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": dict(state),
                      "torch_rng": torch.get_rng_state()}, ckpt)

    batch_samples = int(cfg.batch_seconds * 16000)
    amp = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    t_start = time.perf_counter() - state["wall_s"]
    last_ckpt = time.perf_counter()
    losses: list[float] = []
    calib_t0 = time.perf_counter()
    recal_t0: float | None = None
    bar = tqdm(total=state["total_steps"], initial=state["step"], desc="train teacher", unit="step")
    while state["step"] < state["total_steps"]:
        rng = random.Random(cfg.seed * 1000 + state["epoch"])
        batches = make_batches(lengths, batch_samples, rng, shortest_first=shortest_first and state["epoch"] == 0)
        while state["batch_in_epoch"] < len(batches) and state["step"] < state["total_steps"]:
            idx = batches[state["batch_in_epoch"]]
            x, mask, y = collate(audios, labels, idx, device)
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], state["total_steps"], cfg)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = model(x, attention_mask=mask, labels=y).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            state["step"] += 1
            state["batch_in_epoch"] += 1
            state["audio_seconds"] += sum(lengths[i] for i in idx) / 16000
            state["wall_s"] = time.perf_counter() - t_start
            losses.append(float(loss.detach()))
            bar.update(1)
            if not state["calibrated"] and state["step"] == cfg.calibration_steps // 2:
                calib_t0 = time.perf_counter()  # the first steps pay for CUDA/cuDNN warm-up: time after them
            if not state["calibrated"] and state["step"] >= cfg.calibration_steps:
                per_step = (time.perf_counter() - calib_t0) / (cfg.calibration_steps - cfg.calibration_steps // 2)
                remaining = cfg.time_budget_minutes * 60 - state["wall_s"]
                # leave ~8 % of the budget for evaluation and checkpoints
                state["total_steps"] = max(state["step"] + 1, state["step"] + int(remaining * 0.92 / per_step))
                state["calibrated"] = True
                bar.total = state["total_steps"]
                log.info("calibrated: %.3f s/step -> %d steps in %.1f min", per_step, state["total_steps"],
                         cfg.time_budget_minutes)
            # epoch 0 runs shortest first, whose steps are cheaper than the average (measured: 1.03 vs 1.37 s),
            # so the budget is checked once more on the first shuffled steps of epoch 1
            if (cfg.time_budget_minutes is not None and not state.get("recalibrated", True)
                    and state["epoch"] >= 1):
                if state["batch_in_epoch"] == cfg.calibration_steps // 2:
                    recal_t0 = time.perf_counter()
                elif state["batch_in_epoch"] >= cfg.calibration_steps and recal_t0 is not None:
                    per_step = (time.perf_counter() - recal_t0) / (cfg.calibration_steps - cfg.calibration_steps // 2)
                    remaining = cfg.time_budget_minutes * 60 - state["wall_s"]
                    state["total_steps"] = max(state["step"] + 1, state["step"] + int(remaining * 0.92 / per_step))
                    state["recalibrated"] = True
                    bar.total = state["total_steps"]
                    log.info("recalibrated on shuffled batches: %.3f s/step -> %d steps", per_step,
                             state["total_steps"])
            if state["step"] % cfg.log_every == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-cfg.log_every:]):.3f}",
                                lr=f"{opt.param_groups[0]['lr']:.2e}")
            final = state["step"] >= state["total_steps"]
            if state["step"] % cfg.eval_every == 0 or final:
                wer, cer = evaluate(model, dev_audios, dev_texts, device)
                writer.writerow([state["step"], state["epoch"], f"{np.mean(losses[-cfg.log_every:]):.4f}",
                                 f"{opt.param_groups[0]['lr']:.6g}", f"{wer:.4f}", f"{cer:.4f}",
                                 f"{state['wall_s']:.1f}", f"{state['audio_seconds'] / 3600:.3f}"])
                log_file.flush()
                log.info("step %d: loss %.3f dev WER %.2f%% CER %.2f%%", state["step"],
                         np.mean(losses[-cfg.log_every:]), 100 * wer, 100 * cer)
            elif state["step"] % cfg.log_every == 0:
                writer.writerow([state["step"], state["epoch"], f"{np.mean(losses[-cfg.log_every:]):.4f}",
                                 f"{opt.param_groups[0]['lr']:.6g}", "", "", f"{state['wall_s']:.1f}",
                                 f"{state['audio_seconds'] / 3600:.3f}"])
            if time.perf_counter() - last_ckpt > cfg.checkpoint_minutes * 60:
                save_checkpoint()
                last_ckpt = time.perf_counter()
        if state["batch_in_epoch"] >= len(batches):
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    bar.close()
    save_checkpoint()
    log_file.close()
    model.eval()
    final_dir = out / "model"
    from compress.model_io.hf import save_model_dir

    save_model_dir(model.to(getattr(torch, cfg.save_dtype)).cpu(), final_dir, do_normalize=True)
    summary = {"steps": state["step"], "epochs": state["epoch"], "wall_s": state["wall_s"],
               "audio_hours_processed": state["audio_seconds"] / 3600, "train_hours": train_hours,
               "device": str(device), "torch": torch.__version__}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    log.info("saved %s (%s)", final_dir, summary)
    return final_dir
