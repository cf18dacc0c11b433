"""Build the shipped sentence pools of the synthetic corpus from the King James Bible (public domain).

Run once, by hand, on a Debian machine:  apt-get install bible-kjv bible-kjv-text
                                         python tools/make_kjv_text.py
It writes core/data/synth_text/{kjv_train.txt,kjv_heldout.txt,kjv_meta.json}.  Not run in CI.

Choices (each keeps transcripts exactly what espeak-ng says, and spelling learnable from few hours):
  * verses are cut into clauses at . ; : ? ! and kept when 5-35 words long;
  * text is normalised to the LibriSpeech set (A-Z, apostrophe, space);
  * clauses with numerals, single letters other than A and I, Roman numerals or abbreviations are dropped;
  * only clauses whose every word is among the VOCAB_SIZE most frequent words are kept;
  * about 8 % of the clauses, chosen by a hash of their text (no seed), form the held-out pool that
    dev-clean and dev-other draw from and that training never sees.
"""
from __future__ import annotations

import collections
import hashlib
import json
import re
import subprocess
from pathlib import Path

VOCAB_SIZE = 3000
HELDOUT_PERCENT = 8
OUT = Path(__file__).resolve().parents[1] / "core" / "data" / "synth_text"
ROMAN = re.compile(r"^(?=[MDCLXVI])M*(C[MD]|D?C{0,3})(X[CL]|L?X{0,3})(I[XV]|V?I{0,3})$")
ABBREVIATIONS = {"MR", "MRS", "DR", "ST", "ETC", "CF", "VIZ", "NO", "VS", "JR", "SR", "CO", "LTD"}


def verses() -> list[str]:
    raw = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    return [line.split(" ", 1)[1] for line in raw.splitlines() if " " in line]


def clauses(verse: str) -> list[str]:
    return [c.strip() for c in re.split(r"[.;:?!]", verse) if c.strip()]


def normalise(text: str) -> str:
    text = text.upper().replace("\u2019", "'")
    text = re.sub(r"[^A-Z0-9' ]", " ", text)
    text = re.sub(r"(^| )'+|'+( |$)", " ", text)  # quote marks, not possessives
    return re.sub(r"\s+", " ", text).strip()


def speakable(words: list[str]) -> bool:
    for w in words:
        if any(ch.isdigit() for ch in w) or w in ABBREVIATIONS:
            return False
        if len(w) == 1 and w not in {"A", "I"}:
            return False
        if len(w) > 1 and ROMAN.match(w) and w not in {"MIX", "DID", "LID", "MILL", "CIVIL", "VIVID", "DIM", "MID"}:
            return False
    return True


def main() -> None:
    sents = []
    for v in verses():
        for c in clauses(v):
            t = normalise(c)
            words = t.split()
            if 5 <= len(words) <= 35 and speakable(words):
                sents.append(t)
    sents = list(dict.fromkeys(sents))  # unique, first-seen order
    freq = collections.Counter(w for s in sents for w in s.split())
    vocab = {w for w, _ in freq.most_common(VOCAB_SIZE)}
    kept = [s for s in sents if all(w in vocab for w in s.split())]
    train, heldout = [], []
    for s in kept:
        bucket = int(hashlib.sha256(s.encode()).hexdigest(), 16) % 100
        (heldout if bucket < HELDOUT_PERCENT else train).append(s)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "kjv_train.txt").write_text("\n".join(train) + "\n")
    (OUT / "kjv_heldout.txt").write_text("\n".join(heldout) + "\n")
    meta = {"source": "King James Version (1611), public domain, Debian package bible-kjv-text",
            "vocab_size": VOCAB_SIZE, "heldout_percent": HELDOUT_PERCENT, "clauses_total": len(sents),
            "clauses_kept": len(kept), "train": len(train), "heldout": len(heldout),
            "words_in_vocab": len({w for s in kept for w in s.split()})}
    (OUT / "kjv_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
