"""The shipped teacher loads offline and really recognises freshly generated synthetic speech."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.data.librispeech import load_audio, read_subset
from bench.data.synth.corpus import SynthConfig, ensure_corpus
from bench.inference import Transcriber
from bench.scoring import score
from compress.model_io.arch import wav2vec2_config
from compress.model_io.hf import load_model_dir
from compress.variants import teacher_dir


@pytest.fixture(scope="module")
def dev_clean(tmp_path_factory: pytest.TempPathFactory):
    root = ensure_corpus(SynthConfig(dev_utterances=10), ("dev-clean",), root=tmp_path_factory.mktemp("t"),
                         progress=False)
    m = read_subset(root / "LibriSpeech" / "dev-clean")
    return [u.transcript for u in m.utterances], [load_audio(u) for u in m.utterances]


def test_teacher_is_shipped_small_and_loads_as_fp32() -> None:
    d = teacher_dir()
    size = sum(p.stat().st_size for p in Path(d).iterdir())
    assert size < 25e6
    model, fe = load_model_dir(d)
    assert next(model.parameters()).dtype == torch.float32
    assert model.config.num_hidden_layers >= 12 and model.config.vocab_size == 32
    assert fe.do_normalize


def test_teacher_beats_a_random_model(dev_clean) -> None:
    from transformers import Wav2Vec2ForCTC

    refs, audios = dev_clean
    model, fe = load_model_dir(teacher_dir())
    trained = score(refs, Transcriber(model, fe.do_normalize, batch_size=4).transcribe(audios))
    torch.manual_seed(0)
    random_model = Wav2Vec2ForCTC(wav2vec2_config("embedded"))
    rand = score(refs, Transcriber(random_model, True, batch_size=4).transcribe(audios))
    assert rand.cer > 0.8 and rand.wer > 0.95
    assert trained.cer < 0.35 and trained.wer < 0.75, trained
