"""Corpus-level WER and CER with jiwer on LibriSpeech-normalised text."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bench.text import normalize_transcript


@dataclass(frozen=True)
class Score:
    wer: float  # fraction, corpus level: (S + D + I) / reference words
    cer: float
    n_utts: int
    ref_words: int
    ref_chars: int

    @property
    def wer_percent(self) -> float:
        return 100.0 * self.wer

    @property
    def cer_percent(self) -> float:
        return 100.0 * self.cer


def score(references: Sequence[str], hypotheses: Sequence[str]) -> Score:
    """Corpus WER/CER after normalising both sides; empty hypotheses count as deletions."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalize_transcript(r) for r in references]
    hyps = [normalize_transcript(h) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r]  # jiwer rejects empty references
    refs = [refs[i] for i in keep]
    hyps = [hyps[i] for i in keep]
    if not refs:
        return Score(float("nan"), float("nan"), 0, 0, 0)
    wer = jiwer.wer(refs, hyps)
    cer = jiwer.cer(refs, hyps)
    return Score(float(wer), float(cer), len(refs), sum(len(r.split()) for r in refs), sum(len(r) for r in refs))
