"""tools/word_errors.py: the error kinds add up to jiwer's counts and name the right words."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("word_errors", Path(__file__).resolve().parents[1] / "tools" /
                                              "word_errors.py")
word_errors_mod = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(word_errors_mod)


def test_word_errors_counts_each_kind() -> None:
    out, kinds = word_errors_mod.word_errors(["THE BLOOD OF IT", "THERE IS A B"], ["THE BLOD OF", "THEIR IS A B C"])
    assert out.wer == pytest.approx(4 / 8)
    assert kinds["substitute"] == {("BLOOD", "BLOD"): 1, ("THERE", "THEIR"): 1}
    assert kinds["delete"] == {"IT": 1} and kinds["insert"] == {"C": 1}
    assert sum(kinds["substitute"].values()) == out.substitutions
