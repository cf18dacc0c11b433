"""core.scoring: WER and the word-error breakdown agree, on the same normalised text."""
from __future__ import annotations

import pytest

from core.scoring import align_words, score, wer_interval, word_errors


def test_word_errors_counts_each_kind_and_matches_score() -> None:
    refs, hyps = ["The blood of it.", "THERE IS A B", ""], ["THE BLOD OF", "THEIR IS A B C", "NOISE"]
    out, kinds = word_errors(refs, hyps)
    assert out.wer == pytest.approx(4 / 8) == pytest.approx(score(refs, hyps).wer)  # empty reference dropped
    assert kinds["substitute"] == {("BLOOD", "BLOD"): 1, ("THERE", "THEIR"): 1}
    assert kinds["delete"] == {"IT": 1} and kinds["insert"] == {"C": 1}
    assert sum(kinds["substitute"].values()) == out.substitutions


def test_wer_interval_brackets_the_corpus_wer_and_narrows_with_more_utterances() -> None:
    refs = [f"THE LORD IS MY SHEPHERD {w}" for w in ("ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX")]
    hyps = ["THE LORD IS MY SHEPHERD ONE", "THE LORD IS MY SHEPERD TWO", "THE LORD IS MY SHEPHERD THREE",
            "THE LAWD IS MY SHEPERD FOUR", "THE LORD IS MY SHEPHERD FIVE", "THE LORD IS MY SHEPHERD SIX X"]
    wer = score(refs, hyps).wer  # 4 errors in 36 words
    low, high = wer_interval(align_words(refs, hyps))
    assert low <= wer <= high and low < high
    assert wer_interval(align_words(refs, hyps)) == (low, high)  # deterministic for the seed
    low10, high10 = wer_interval(align_words(refs * 10, hyps * 10))
    assert low10 <= wer <= high10 and high10 - low10 < high - low
    assert wer_interval(align_words(refs, refs)) == (0.0, 0.0)
