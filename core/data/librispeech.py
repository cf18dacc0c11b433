"""LibriSpeech layout reader: ``ROOT/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` plus
``<spk>-<chapter>.trans.txt``.

It yields a frozen :class:`Manifest` whose content hash (ids, durations, transcripts, and a digest of
each file's size) goes into every result row, so two results are comparable only if they were
measured on the same utterances.  Problems are collected as :class:`Problem` lines, never raised as
tracebacks; ``on_error="stop"`` turns the first problem into one :class:`FootprintError` line.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from core.errors import FootprintError
from core.text import invalid_chars

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
AUDIO_EXTENSIONS = (".flac", ".wav")
OnError = Literal["skip", "stop"]


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    path: str
    duration_s: float
    speaker: str
    chapter: str
    transcript: str
    sample_rate: int = SAMPLE_RATE
    channels: int = 1


@dataclass(frozen=True)
class Problem:
    utt_id: str
    path: str
    kind: str  # unreadable | empty | missing-audio | missing-transcript | resampled | bad-chars | ...
    detail: str
    fatal: bool = True  # fatal problems drop the utterance; non-fatal ones are warnings

    def __str__(self) -> str:
        level = "ERROR" if self.fatal else "WARNING"
        return f"{level} {self.kind}: {self.utt_id} ({self.path}): {self.detail}"


@dataclass(frozen=True)
class Manifest:
    root: str
    subset: str
    utterances: tuple[Utterance, ...]
    problems: tuple[Problem, ...] = field(default=())

    @property
    def total_seconds(self) -> float:
        return float(sum(u.duration_s for u in self.utterances))

    @property
    def hours(self) -> float:
        return self.total_seconds / 3600.0

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})

    @property
    def skipped(self) -> int:
        return len({p.utt_id for p in self.problems if p.fatal})

    @property
    def content_hash(self) -> str:
        """sha256 over (id, transcript, rounded duration) of every kept utterance, in id order; 16 hex digits."""
        h = hashlib.sha256()
        for u in sorted(self.utterances, key=lambda u: u.utt_id):
            h.update(f"{u.utt_id}\t{u.transcript}\t{u.duration_s:.4f}\n".encode())
        return h.hexdigest()[:16]

    def subset_of(self, n: int | None) -> "Manifest":
        """The first ``n`` utterances in id order (deterministic), or all when ``n`` is None."""
        if n is None or n >= len(self.utterances):
            return self
        utts = tuple(sorted(self.utterances, key=lambda u: u.utt_id)[:n])
        return Manifest(self.root, self.subset, utts, self.problems)


def _read_transcripts(trans_file: Path, problems: list[Problem]) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        lines = trans_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(trans_file.name, str(trans_file), "unreadable-transcript", str(exc)))
        return out
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.strip().split(" ", 1)
        utt_id = parts[0]
        text = parts[1].strip() if len(parts) > 1 else ""
        if not text:
            problems.append(Problem(utt_id, f"{trans_file}:{n}", "empty-transcript", "transcript line has no text"))
        out[utt_id] = text
    return out


def read_subset(subset_dir: str | Path, on_error: OnError = "skip",
                check_audio: bool = True) -> Manifest:
    """Read one LibriSpeech subset directory (e.g. ``.../LibriSpeech/dev-clean``) into a manifest.

    ``check_audio`` opens each file's header (cheap) for duration, rate and channels; another rate or a
    multi-channel file is kept and converted on load (a non-fatal warning problem), since that is what
    a user converting their own data wants; unreadable or empty audio is dropped.
    """
    subset_dir = Path(subset_dir)
    if not subset_dir.is_dir():
        raise FootprintError(f"{subset_dir}: not a directory (expected ROOT/<subset> in LibriSpeech layout)")
    problems: list[Problem] = []
    utterances: list[Utterance] = []
    trans_files = sorted(subset_dir.glob("*/*/*.trans.txt"))
    audio_files = {p.stem: p for ext in AUDIO_EXTENSIONS for p in subset_dir.glob(f"*/*/*{ext}")}
    if not trans_files and not audio_files:
        raise FootprintError(f"{subset_dir}: no <spk>/<chapter>/*.trans.txt or audio files found")
    transcripts: dict[str, tuple[str, Path]] = {}
    for tf in trans_files:
        for utt_id, text in _read_transcripts(tf, problems).items():
            transcripts[utt_id] = (text, tf)
    for utt_id in sorted(set(audio_files) - set(transcripts)):
        problems.append(Problem(utt_id, str(audio_files[utt_id]), "missing-transcript",
                                "audio file has no line in its chapter's .trans.txt"))
    for utt_id, (text, tf) in sorted(transcripts.items()):
        path = audio_files.get(utt_id)
        if path is None:
            problems.append(Problem(utt_id, str(tf), "missing-audio", f"transcript line but no {utt_id}.flac"))
            continue
        if not text:
            continue  # already reported as empty-transcript
        bad = invalid_chars(text)
        if bad:
            problems.append(Problem(utt_id, str(tf), "bad-chars",
                                    f"characters outside the vocabulary: {''.join(sorted(bad))!r}"))
            continue
        parts = utt_id.split("-")
        speaker, chapter = (parts[0], parts[1]) if len(parts) >= 3 else (path.parent.parent.name, path.parent.name)
        duration, rate, channels = 0.0, SAMPLE_RATE, 1
        if check_audio:
            try:
                info = sf.info(str(path))
                rate, channels = int(info.samplerate), int(info.channels)
                duration = info.frames / rate if rate else 0.0
            except Exception as exc:  # noqa: BLE001 - libsndfile raises several types; report as one line
                problems.append(Problem(utt_id, str(path), "unreadable", _one_line(exc)))
                continue
            if info.frames == 0:
                problems.append(Problem(utt_id, str(path), "empty", "audio has no samples"))
                continue
            if rate != SAMPLE_RATE or channels != 1:
                problems.append(Problem(utt_id, str(path), "converted",
                                        f"{rate} Hz x {channels} ch; converted to 16000 Hz mono on load",
                                        fatal=False))
        utterances.append(Utterance(utt_id, str(path), duration, speaker, chapter, text, rate, channels))
    fatal = [p for p in problems if p.fatal]
    if fatal and on_error == "stop":
        raise FootprintError(f"{fatal[0]} ({len(fatal)} problem(s) in {subset_dir}; use skip to drop them)")
    for p in problems:
        (log.error if p.fatal else log.warning)("%s", p)
    return Manifest(str(subset_dir.parent), subset_dir.name, tuple(utterances), tuple(problems))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def load_audio(utt: Utterance) -> np.ndarray:
    """Decode one utterance to float32 mono at 16 kHz (downmix and resample when needed)."""
    try:
        audio, rate = sf.read(utt.path, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise FootprintError(f"{utt.path}: cannot decode audio: {_one_line(exc)}") from None
    audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return audio
