"""Tiny models and corpora for tests and smoke runs (seconds, no downloads): not for measurements."""
from __future__ import annotations

import json
from pathlib import Path

TINY_OVERRIDES = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, conv_dim=(16,) * 7,
                      num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


def tiny_model(layers: int = 2, seed: int = 0):  # noqa: ANN201
    """A random Wav2Vec2ForCTC with the embedded architecture's shape at toy width (~28 k parameters)."""
    import torch
    from transformers import Wav2Vec2ForCTC

    from core.arch import wav2vec2_config

    torch.manual_seed(seed)
    return Wav2Vec2ForCTC(wav2vec2_config("embedded", layers=layers, **TINY_OVERRIDES)).eval()


def save_tiny_model(path: str | Path, layers: int = 2, seed: int = 0) -> Path:
    """``tiny_model`` saved as a Hugging Face directory with a minimal preprocessor_config.json."""
    path = Path(path)
    tiny_model(layers, seed).save_pretrained(str(path))
    (path / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True, "sampling_rate": 16000,
                                                               "feature_size": 1, "padding_value": 0.0}))
    return path


def tiny_corpus(root: str | Path, utterances: int = 8) -> Path:
    """A synthetic dev-clean of ``utterances`` utterances under ``root``; returns the subset directory."""
    from core.data.synth.corpus import SynthConfig, ensure_corpus

    base = ensure_corpus(SynthConfig(dev_utterances=utterances), ["dev-clean"], root=Path(root), progress=False)
    return Path(base) / "LibriSpeech" / "dev-clean"


def shared_tiny_corpus(tmp_path_factory, utterances: int = 8) -> Path:  # noqa: ANN001
    """One tiny corpus per pytest session (generation is idempotent and cached by its parameters)."""
    return tiny_corpus(tmp_path_factory.getbasetemp() / "shared-tiny-corpus", utterances)


def is_imported(name: str) -> bool:
    """Whether module ``name`` is imported in the calling process (run in a child to see what it started with)."""
    import sys

    return name in sys.modules
