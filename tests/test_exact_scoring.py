"""core.scoring against hand-counted errors and a bootstrap whose distribution is worked out by hand."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from core.scoring import align_words, normalised_pairs, score, wer_interval


def test_score_counts_by_hand() -> None:
    # one substitution in 3 words; characters: "THE CAT SAT" is 11, one of them substituted
    s = score(["the cat sat"], ["the cat sit"])
    assert s.wer == pytest.approx(1 / 3) and s.cer == pytest.approx(1 / 11)
    assert (s.n_utts, s.ref_words, s.ref_chars) == (1, 3, 11)
    assert isinstance(s.wer, float) and isinstance(s.cer, float)


def test_score_without_references_is_nan_and_zero() -> None:
    s = score(["", "  "], ["something", ""])
    assert math.isnan(s.wer) and math.isnan(s.cer)
    assert (s.n_utts, s.ref_words, s.ref_chars) == (0, 0, 0)


def test_length_mismatch_message() -> None:
    with pytest.raises(ValueError, match=r"^2 references but 1 hypotheses$"):
        normalised_pairs(["a", "b"], ["a"])


def test_interval_of_one_utterance_is_its_wer() -> None:
    # a single one-word utterance, substituted: every resample has WER 1/1
    assert wer_interval(align_words(["yes"], ["no"])) == (1.0, 1.0)


def test_interval_of_two_utterances() -> None:
    # utterance 0: one word, one error; utterance 1: one word, none.  A resample of 2 draws (0, 0) with
    # probability 1/4 (WER 1), (1, 1) with 1/4 (WER 0), a mix with 1/2 (WER 1/2): the CDF steps at 0.25 and 0.75.
    a = align_words(["yes", "no"], ["no", "no"])
    assert wer_interval(a) == (0.0, 1.0)                           # 2.5 % and 97.5 % quantiles
    assert wer_interval(a, level=0.4) == (0.5, 0.5)                # 30 % and 70 % quantiles: both inside the mix
    assert wer_interval(a, level=0.8) == (0.0, 1.0)                # 10 % and 90 %
    # the defaults are the documented ones, deterministic
    assert wer_interval(a) == wer_interval(a, level=0.95, resamples=2000, seed=0) == wer_interval(a)


def test_interval_defaults_are_pinned() -> None:
    # 40 utterances of 1-40 words with 0-4 substitutions: the resampled WERs are nearly all distinct, so the
    # quantiles move with the seed and the number of resamples; the defaults must be exactly seed=0, resamples=2000
    refs = [" ".join(["a"] * (i + 1)) for i in range(40)]
    hyps = [" ".join("b" if j < (i * 7) % 5 else "a" for j in range(i + 1)) for i in range(40)]
    a = align_words(refs, hyps)
    default = wer_interval(a)
    assert default == wer_interval(a, 0.95, 2000, 0)
    assert default != wer_interval(a, 0.95, 2000, 1)
    assert default != wer_interval(a, 0.95, 2001, 0)


def test_interval_of_nothing_is_nan() -> None:
    lo, hi = wer_interval(SimpleNamespace(references=[], alignments=[]))
    assert math.isnan(lo) and math.isnan(hi)
