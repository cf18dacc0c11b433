"""The 32-symbol letter vocabulary, LibriSpeech text normalisation and greedy CTC decoding.

The vocabulary follows fairseq's ``dict.ltr.txt`` order (the letter dictionary published with the wav2vec 2.0
fine-tuned models, https://dl.fbaipublicfiles.com/fairseq/wav2vec/dict.ltr.txt): four specials, then the letters
by frequency.  Hugging Face's ``wav2vec2-*-960h`` (``vocab.json`` of e.g. ``facebook/wav2vec2-large-960h``) uses
the same indices with ``<pad>`` (index 0) as the CTC blank, so models imported from either world share one decoder.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

SPECIALS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>")
LETTERS: tuple[str, ...] = tuple("|ETAONIHSRDLUMWCFGYPBVK'XJQZ")
VOCAB: tuple[str, ...] = SPECIALS + LETTERS
BLANK_ID = 0
WORD_DELIMITER = "|"
VOCAB_DICT: dict[str, int] = {tok: i for i, tok in enumerate(VOCAB)}
assert len(VOCAB) == 32 and VOCAB_DICT["|"] == 4 and VOCAB_DICT["Z"] == 31

# fairseq's dictionary order: <s>=0 (used as blank by fairseq's CTC), <pad>=1, </s>=2, <unk>=3.
FAIRSEQ_SPECIALS: tuple[str, ...] = ("<s>", "<pad>", "</s>", "<unk>")

ALLOWED_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ")
_SPACES = re.compile(r"\s+")


def normalize_transcript(text: str) -> str:
    """LibriSpeech normalisation: upper case, apostrophes kept, single spaces, nothing else."""
    text = text.upper().replace("\u2019", "'")
    text = "".join(ch if ch in ALLOWED_CHARS else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def invalid_chars(text: str) -> set[str]:
    """Characters of ``text`` that the letter vocabulary cannot represent."""
    return {ch for ch in text if ch not in ALLOWED_CHARS}


def encode(text: str) -> list[int]:
    """Transcript -> label ids (space becomes the word delimiter ``|``)."""
    return [VOCAB_DICT[WORD_DELIMITER if ch == " " else ch] for ch in text]


def greedy_ctc_decode(ids: Sequence[int] | Iterable[int], vocab: Sequence[str] = VOCAB,
                      blank_id: int = BLANK_ID) -> str:
    """Per-frame argmax ids -> text: collapse repeats, drop blanks and specials, ``|`` to space.

    This is what the paper's "Viterbi" decoder with an all-zero transition matrix computes.
    """
    out: list[str] = []
    prev = None
    for i in ids:
        i = int(i)
        if i != prev and i != blank_id:
            tok = vocab[i]
            if tok == WORD_DELIMITER:
                out.append(" ")
            elif not (tok.startswith("<") and tok.endswith(">")):
                out.append(tok)
        prev = i
    return _SPACES.sub(" ", "".join(out)).strip()
