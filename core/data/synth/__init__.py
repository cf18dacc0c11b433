"""Offline synthetic speech corpus in LibriSpeech layout (espeak-ng voices x King James Bible text)."""
