"""Shared helpers for the compression-method tests: tiny random models and a tiny LibriSpeech-layout corpus.

Imported by the ``test_methods_*`` / ``test_distill*`` modules (kept out of ``conftest.py``, which other parts
of the suite own).  Collected by pytest too; it holds one sanity test of its own.
"""
from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "conv_dim": (16,) * 7,
        "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
WORDS = ["IN", "THE", "BEGINNING", "GOD", "CREATED", "HEAVEN", "AND", "EARTH", "LIGHT", "WATERS"]


def tiny_config(layers: int = 4, **overrides: Any):
    from core.arch import wav2vec2_config

    kw = dict(TINY)
    kw.update(overrides)
    return wav2vec2_config("embedded", layers=layers, **kw)


def tiny_model(layers: int = 4, seed: int = 0, randomize_biases: bool = True, **overrides: Any):
    """A random tiny Wav2Vec2ForCTC; biases and norms randomised too, so copies and zeros are meaningful."""
    import torch
    from transformers import Wav2Vec2ForCTC

    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(copy.deepcopy(tiny_config(layers, **overrides))).eval()
    if randomize_biases:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.ndim == 1:
                    p.add_(0.05 * torch.randn_like(p))
    return model


def save_tiny(model, out: Path, recipe: str = "baseline") -> Path:
    from compress.methods.storage import save_variant

    save_variant(model, out, recipe=recipe, stages=[{"name": recipe, "config": {}}], do_normalize=True,
                 source={"spec": "tiny-random", "hash": None})
    return out


def write_corpus(root: Path, speakers: int = 4, per_speaker: int = 6, seed: int = 0,
                 subset: str = "train-clean") -> Path:
    """Random audio (0.6-1.4 s) + KJV-ish transcripts in LibriSpeech layout; returns the subset directory."""
    import soundfile as sf

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    sub = root / "LibriSpeech" / subset
    for s in range(speakers):
        spk, chap = str(100 + s), "1"
        d = sub / spk / chap
        d.mkdir(parents=True, exist_ok=True)
        lines = []
        for u in range(per_speaker):
            utt = f"{spk}-{chap}-{u:04d}"
            n = int(16000 * rng.uniform(0.6, 1.4))
            audio = (0.1 * nrng.standard_normal(n)).astype(np.float32)
            sf.write(str(d / f"{utt}.flac"), audio, 16000, subtype="PCM_16")
            lines.append(f"{utt} {' '.join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))}")
        (d / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    return sub


def safetensors_payload(path: Path) -> int:
    """Bytes of tensor data in a safetensors file (file size minus its JSON header: large for tiny models)."""
    import struct

    with open(path, "rb") as fh:
        (header,) = struct.unpack("<Q", fh.read(8))
    return path.stat().st_size - 8 - header


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory) -> Path:
    return save_tiny(tiny_model(layers=4, seed=1), tmp_path_factory.mktemp("teacher") / "teacher")


def test_tiny_corpus_reads(tiny_corpus: Path) -> None:
    from core.data.librispeech import read_subset

    m = read_subset(tiny_corpus)
    assert len(m.utterances) == 24 and len(m.speakers) == 4 and not m.problems
