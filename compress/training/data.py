"""Speech batches for training: the corpus decoded into memory, batches of similar length, padded tensors,
and the greedy dev WER/CER used by both trainers."""
from __future__ import annotations

import os
import random
from multiprocessing import get_context

import numpy as np
import torch

from core.data.librispeech import Manifest, load_audio
from core.text import encode


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
