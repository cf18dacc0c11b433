"""Distillation data: the training subset minus a held-out validation split, optionally a fraction of it,
decoded into memory with a content key per utterance (the teacher cache's key)."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compress.methods.distill.config import DistillConfig
from core.errors import FootprintError


@dataclass
class DistillData:
    audios: list[np.ndarray]
    labels: list[list[int]]
    keys: list[str]
    val_audios: list[np.ndarray]
    val_texts: list[str]
    train_hours: float
    train_hash: str
    val_desc: str


def subset_dir(spec: str, hours_train: float) -> Path:
    if spec.startswith("embedded:"):
        subset = spec.split(":", 1)[1].strip() or "train-clean"
        from core.data.synth.corpus import SynthConfig, ensure_corpus

        # the same synthetic corpus the teacher was trained on (keyed by its parameters, cached)
        return Path(ensure_corpus(SynthConfig(hours_train=hours_train), (subset,))) / "LibriSpeech" / subset
    return Path(spec).expanduser()


def _stable_hash(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def split_train_val(utts: list[Any], val_utterances: int) -> tuple[list[Any], list[Any]]:
    """Hold out whole speakers (in a fixed hash order) until ``val_utterances`` are held out.

    At most half of the speakers go; with a single speaker, utterances are held out instead.
    """
    if val_utterances <= 0:
        return list(utts), []
    by_spk: dict[str, list[Any]] = {}
    for u in utts:
        by_spk.setdefault(u.speaker, []).append(u)
    speakers = sorted(by_spk, key=_stable_hash)
    held: list[Any] = []
    if len(speakers) >= 2:
        for spk in speakers[: len(speakers) // 2]:
            if len(held) >= val_utterances:
                break
            held += by_spk[spk]
    else:
        held = sorted(utts, key=lambda u: _stable_hash(u.utt_id))[: min(val_utterances, len(utts) // 5)]
    held_ids = {u.utt_id for u in held}
    return [u for u in utts if u.utt_id not in held_ids], held


def _fraction(utts: list[Any], fraction: float, seed: int) -> list[Any]:
    if fraction >= 1:
        return utts
    order = sorted(utts, key=lambda u: u.utt_id)
    random.Random(seed).shuffle(order)
    target = fraction * sum(u.duration_s for u in utts)
    out, acc = [], 0.0
    for u in order:
        if acc >= target:
            break
        out.append(u)
        acc += u.duration_s
    return out


def load_data(cfg: DistillConfig) -> DistillData:
    from core.data.librispeech import Manifest, read_subset
    from compress.training import load_split

    train_dir = subset_dir(cfg.data, cfg.hours_train)
    manifest = read_subset(train_dir)
    utts = [u for u in manifest.utterances if u.duration_s <= cfg.max_utterance_seconds]
    if cfg.val_data:
        val_m = read_subset(subset_dir(cfg.val_data, cfg.hours_train))
        if Path(val_m.root).resolve() == Path(manifest.root).resolve() and val_m.subset == manifest.subset:
            raise FootprintError(f"{cfg.val_data}: the validation data is the training data")
        val_utts = list(val_m.subset_of(cfg.val_utterances).utterances)
        train_utts = utts
        val_desc = f"{cfg.val_data} ({len(val_utts)} utterances)"
    else:
        train_utts, val_utts = split_train_val(utts, cfg.val_utterances)
        # the spec, not the cache path: variant.json travels to other machines
        where = (f"{cfg.data} (synthetic corpus, hours_train {cfg.hours_train:g})" if cfg.data.startswith("embedded:")
                 else str(train_dir))
        val_desc = (f"{len(val_utts)} utterances of {len({u.speaker for u in val_utts})} speakers held out of "
                    f"{where}")
    train_utts = _fraction(train_utts, cfg.data_fraction, cfg.seed)
    if not train_utts:
        raise FootprintError(f"{train_dir}: no training utterances left (after the validation split and "
                             f"--data-fraction {cfg.data_fraction})")
    train_m = Manifest(manifest.root, manifest.subset, tuple(train_utts))
    audios, labels, _ = load_split(train_m, cfg.decode_jobs)
    if val_utts:
        val_audios, _, val_texts = load_split(Manifest(manifest.root, "validation", tuple(val_utts)),
                                              cfg.decode_jobs)
    else:
        val_audios, val_texts = [], []
    keys = [hashlib.blake2b(a.tobytes(), digest_size=12).hexdigest() for a in audios]
    hours = sum(len(a) for a in audios) / 16000 / 3600
    return DistillData(audios, labels, keys, val_audios, val_texts, hours, train_m.content_hash, val_desc)
