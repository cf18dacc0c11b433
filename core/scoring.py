"""Corpus-level WER and CER with jiwer on LibriSpeech-normalised text."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from core.text import normalize_transcript


@dataclass(frozen=True)
class Score:
    wer: float  # fraction, corpus level: (S + D + I) / reference words
    cer: float
    n_utts: int
    ref_words: int
    ref_chars: int


def normalised_pairs(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    """Both sides LibriSpeech-normalised; utterances with an empty reference dropped (jiwer rejects them)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalize_transcript(r) for r in references]
    hyps = [normalize_transcript(h) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r]
    return [refs[i] for i in keep], [hyps[i] for i in keep]


def align_words(references: Sequence[str], hypotheses: Sequence[str]) -> Any:
    """jiwer's word alignment of the normalised pairs (its ``wer`` is ``score``'s WER)."""
    import jiwer

    return jiwer.process_words(*normalised_pairs(references, hypotheses))


def word_errors(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[Any, dict[str, Counter]]:
    """The word alignment (``align_words``) and a Counter per error kind: ``substitute`` of (reference,
    hypothesis) word pairs, ``delete`` and ``insert`` of words."""
    out = align_words(references, hypotheses)
    kinds: dict[str, Counter] = {k: Counter() for k in ("substitute", "delete", "insert")}
    for ref, hyp, chunks in zip(out.references, out.hypotheses, out.alignments):
        for c in chunks:
            if c.type == "substitute":
                kinds["substitute"].update(zip(ref[c.ref_start_idx:c.ref_end_idx], hyp[c.hyp_start_idx:c.hyp_end_idx]))
            elif c.type == "delete":
                kinds["delete"].update(ref[c.ref_start_idx:c.ref_end_idx])
            elif c.type == "insert":
                kinds["insert"].update(hyp[c.hyp_start_idx:c.hyp_end_idx])
    return out, kinds


def wer_interval(alignment: Any, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of the corpus WER (fraction) of an ``align_words`` result, over utterances: errors within
    an utterance are correlated, so utterances, not words, are resampled; the percentile interval at ``level``,
    deterministic for ``seed``."""
    import numpy as np

    n = len(alignment.references)
    if not n:
        return float("nan"), float("nan")
    # a substitution spans as many words on both sides, a deletion only the reference, an insertion only the hypothesis
    errors = np.array([sum(max(c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx)
                           for c in chunks if c.type != "equal") for chunks in alignment.alignments], dtype=float)
    words = np.array([len(r) for r in alignment.references], dtype=float)
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    wers = errors[draws].sum(axis=1) / np.maximum(words[draws].sum(axis=1), 1)
    tail = (1 - level) / 2
    return float(np.quantile(wers, tail)), float(np.quantile(wers, 1 - tail))


def score(references: Sequence[str], hypotheses: Sequence[str]) -> Score:
    """Corpus WER/CER after normalising both sides; empty hypotheses count as deletions."""
    import jiwer

    refs, hyps = normalised_pairs(references, hypotheses)
    if not refs:
        return Score(float("nan"), float("nan"), 0, 0, 0)
    wer = jiwer.wer(refs, hyps)
    cer = jiwer.cer(refs, hyps)
    return Score(float(wer), float(cer), len(refs), sum(len(r.split()) for r in refs), sum(len(r) for r in refs))
