"""Synthetic speakers: espeak-ng voice variant files (pitch, formants, breath, roughness, flutter) x accents x rate.

Every speaker is drawn from a numpy Generator seeded by (seed, pool, index), so the same seed gives the same
speakers.  Train and dev speakers come from disjoint pools ("train"/"dev") so dev speakers are never heard in
training; half of each pool is female.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd")


@dataclass(frozen=True)
class Speaker:
    speaker_id: int
    sex: str  # "F" | "M"
    accent: str
    variant_name: str
    variant_text: str
    rate_wpm: int
    word_gap: int

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant_name}"


def make_speaker(seed: int, pool: str, index: int, speaker_id: int) -> Speaker:
    rng = np.random.default_rng([seed, 0 if pool == "train" else 1, index])
    female = index % 2 == 0
    sex = "F" if female else "M"
    # vocal-tract length: women shorter (higher formants); per-formant jitter keeps voices distinct
    tract = rng.uniform(1.06, 1.22) if female else rng.uniform(0.86, 1.02)
    lo = rng.uniform(150, 215) if female else rng.uniform(70, 125)
    span = rng.uniform(40, 140)
    lines = [f"name {pool}{index:03d}", "language variant", f"gender {'female' if female else 'male'}",
             f"pitch {int(lo)} {int(lo + span)}"]
    for k in range(9):
        freq = tract * rng.uniform(0.96, 1.04) * 100
        strength = rng.uniform(80, 115)
        width = rng.uniform(85, 160) if female else rng.uniform(80, 130)
        lines.append(f"formant {k} {int(freq)} {int(strength)} {int(width)}")
    if rng.random() < 0.4:
        lines.append("breath " + " ".join(str(int(x)) for x in rng.integers(0, 4, 8)))
    lines.append(f"roughness {int(rng.integers(0, 5))}")
    lines.append(f"flutter {int(rng.integers(0, 20))}")
    if rng.random() < 0.3:
        lines.append(f"echo {int(rng.integers(10, 60))} {int(rng.integers(5, 20))}")
    lines.append(f"consonants {int(rng.integers(80, 130))} {int(rng.integers(80, 130))}")
    accent = ACCENTS[int(rng.integers(0, len(ACCENTS)))]
    return Speaker(speaker_id=speaker_id, sex=sex, accent=accent, variant_name=f"{pool}{index:03d}",
                   variant_text="\n".join(lines) + "\n", rate_wpm=int(rng.uniform(135, 200)),
                   word_gap=int(rng.integers(0, 3)))


def make_speakers(seed: int, n_train: int, n_dev: int) -> tuple[list[Speaker], list[Speaker]]:
    train = [make_speaker(seed, "train", i, 1000 + i) for i in range(n_train)]
    dev = [make_speaker(seed, "dev", i, 8000 + i) for i in range(n_dev)]
    return train, dev
