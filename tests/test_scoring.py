"""bench.scoring: WER and the word-error breakdown agree, on the same normalised text."""
from __future__ import annotations

import pytest

from bench.scoring import score, word_errors


def test_word_errors_counts_each_kind_and_matches_score() -> None:
    refs, hyps = ["The blood of it.", "THERE IS A B", ""], ["THE BLOD OF", "THEIR IS A B C", "NOISE"]
    out, kinds = word_errors(refs, hyps)
    assert out.wer == pytest.approx(4 / 8) == pytest.approx(score(refs, hyps).wer)  # empty reference dropped
    assert kinds["substitute"] == {("BLOOD", "BLOD"): 1, ("THERE", "THEIR"): 1}
    assert kinds["delete"] == {"IT": 1} and kinds["insert"] == {"C": 1}
    assert sum(kinds["substitute"].values()) == out.substitutions
