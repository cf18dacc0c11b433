"""espeak-ng driven through ctypes from the ``espeakng-loader`` wheel (no apt, no system espeak).

Synthesis is synchronous: ``espeak_Synth`` returns after the callback has received every sample.
The library keeps global state, so one process holds one :class:`Espeak`; parallel synthesis uses
processes, never threads.
"""
from __future__ import annotations

import ctypes
import logging
import os
import shutil
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

AUDIO_OUTPUT_SYNCHRONOUS = 2
CHARS_UTF8 = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE, PARAM_WORDGAP = 1, 2, 3, 4, 7
# espeak-ng reads at most about 350 files per voice directory and drops the rest silently.
MAX_VARIANTS_PER_DIR = 300  # plus the 13 gmw language files, under the 349 limit

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def prepare_data_dir(target: Path, variants: dict[str, str]) -> Path:
    """Make an espeak-ng data directory at ``target``: the wheel's data, plus our voice variant files.

    The wheel's files are symlinked (nothing is copied but our variants), so this is cheap.
    """
    import espeakng_loader

    if len(variants) > MAX_VARIANTS_PER_DIR:
        raise ValueError(f"{len(variants)} voice variants exceed espeak-ng's per-directory limit")
    source = Path(espeakng_loader.get_data_path())
    data = target / "espeak-ng-data"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name not in ("voices", "lang"):
            os.symlink(entry, data / entry.name)
    # espeak-ng lists at most ~349 voices in all (languages + variants) and drops the rest silently:
    # keep only the West Germanic language files (the English accents) so our variants all fit.
    (data / "lang").mkdir()
    os.symlink(source / "lang" / "gmw", data / "lang" / "gmw")
    vdir = data / "voices" / "!v"
    vdir.mkdir(parents=True)
    for name, text in variants.items():
        (vdir / name).write_text(text)
    return data


class Espeak:
    """One espeak-ng instance in this process, returning float32 audio at its native rate."""

    def __init__(self, data_dir: Path | None = None) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        data_path = str(data_dir if data_dir is not None else espeakng_loader.get_data_path())
        # espeak-ng wants the folder that *contains* espeak-ng-data, or espeak-ng-data itself
        self.sample_rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data at {data_path}")
        self._chunks: list[np.ndarray] = []
        self._cb = _CALLBACK(self._on_audio)  # keep a reference: the library holds a raw pointer
        self.lib.espeak_SetSynthCallback(self._cb)

    def _on_audio(self, wav, n, events) -> int:  # noqa: ANN001 - ctypes signature
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def seed(self, value: int) -> None:
        """Seed espeak-ng's own random generator (breath noise), which otherwise differs from run to run."""
        self.lib.espeak_ng_SetRandSeed(value)

    def set_voice(self, name: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                  word_gap: int = 0) -> None:
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {name!r}")
        for param, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch), (PARAM_RANGE, pitch_range),
                             (PARAM_WORDGAP, word_gap), (PARAM_VOLUME, 100)):
            self.lib.espeak_SetParameter(param, int(value), 0)

    def synth(self, text: str) -> np.ndarray:
        """Speak ``text`` with the current voice; float32 in [-1, 1] at ``self.sample_rate``."""
        self._chunks = []
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        rc = self.lib.espeak_Synth(buf, len(buf), 0, 0, 0, CHARS_UTF8, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed with code {rc}")
        self.lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0
