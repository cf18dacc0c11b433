"""``dev-other`` degradations in numpy/scipy: reverberation, band-limiting, additive noise at 5-20 dB SNR."""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt


def synthetic_rir(rate: int, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying noise tail behind a direct path: a cheap room impulse response."""
    n = int(rate * rt60_s)
    t = np.arange(n) / rate
    tail = rng.normal(0, 1, n) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    tail[: int(0.003 * rate)] = 0.0  # first reflections arrive a few ms after the direct sound
    rir = 0.4 * tail / (np.sqrt(np.sum(tail ** 2)) + 1e-9)
    rir[0] = 1.0
    return rir


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink-ish noise: white noise through a one-pole low-pass, mixed with some white."""
    white = rng.normal(0, 1, n)
    pinkish = lfilter([1.0], [1.0, -0.95], white)
    mix = pinkish / (np.std(pinkish) + 1e-9) + 0.3 * white
    return mix / (np.std(mix) + 1e-9)


def degrade_audio(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    x = audio.astype(np.float64)
    rir = synthetic_rir(rate, rng.uniform(0.2, 0.7), rng)
    x = fftconvolve(x, rir)[: len(x)]
    low, high = rng.uniform(150, 400), rng.uniform(2800, 4500)
    x = sosfilt(butter(4, [low, high], btype="bandpass", fs=rate, output="sos"), x)
    snr_db = rng.uniform(5, 20)
    power = np.mean(x ** 2) + 1e-12
    noise = coloured_noise(len(x), rng) * np.sqrt(power / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)
