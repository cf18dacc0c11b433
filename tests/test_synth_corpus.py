"""The synthetic corpus: LibriSpeech layout, transcripts, determinism, held-out split, distinct voices."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from core.data.librispeech import read_subset
from core.data.synth.corpus import SynthConfig, ensure_corpus, sentence_pool
from core.data.synth.voices import make_speakers
from core.text import ALLOWED_CHARS

CFG = SynthConfig(hours_train=0.01, dev_utterances=6, n_train_speakers=4, n_dev_speakers=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_corpus(CFG, ("train-clean", "dev-clean", "dev-other"), root=tmp_path_factory.mktemp("c"),
                         jobs=2, progress=False)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_librispeech_layout(corpus: Path) -> None:
    libri = corpus / "LibriSpeech"
    assert (libri / "SPEAKERS.TXT").read_text().count("|") > 0
    for subset in ("train-clean", "dev-clean", "dev-other"):
        m = read_subset(libri / subset, on_error="stop")
        assert len(m.utterances) > 0 and not m.problems
        for u in m.utterances:
            spk, chap, _ = u.utt_id.split("-")
            assert Path(u.path) == libri / subset / spk / chap / f"{u.utt_id}.flac"
            assert set(u.transcript) <= ALLOWED_CHARS and 5 <= len(u.transcript.split()) <= 35
            assert u.sample_rate == 16000 and u.channels == 1 and 0.5 < u.duration_s < 30


def test_dev_uses_heldout_sentences_and_speakers(corpus: Path) -> None:
    libri = corpus / "LibriSpeech"
    train = read_subset(libri / "train-clean")
    heldout = set(sentence_pool("heldout"))
    assert not heldout & set(sentence_pool("train"))  # the split is fixed in the shipped text
    for subset in ("dev-clean", "dev-other"):
        dev = read_subset(libri / subset)
        assert {u.transcript for u in dev.utterances} <= heldout
        assert not {u.speaker for u in dev.utterances} & {u.speaker for u in train.utterances}
    assert {u.speaker for u in read_subset(libri / "dev-clean").utterances} == \
        {u.speaker for u in read_subset(libri / "dev-other").utterances}


def test_deterministic_and_cached(corpus: Path, tmp_path: Path) -> None:
    again = ensure_corpus(CFG, ("dev-clean",), root=tmp_path, jobs=1, progress=False)  # other worker count
    assert _digest(again / "LibriSpeech" / "dev-clean") == _digest(corpus / "LibriSpeech" / "dev-clean")
    stamp = corpus / "LibriSpeech" / ".dev-clean.json"
    before = stamp.stat().st_mtime_ns
    ensure_corpus(CFG, ("dev-clean",), root=corpus, progress=False)  # cached: nothing rewritten
    assert stamp.stat().st_mtime_ns == before


def test_same_audio_for_any_job_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # small blocks so that several fresh workers share the work; the train speakers include breathy voices, whose
    # noise comes from espeak-ng's own generator (unseeded, it differed from run to run)
    from core.data.synth import corpus as corpus_module

    monkeypatch.setattr(corpus_module, "SYNTH_BLOCK", 2)
    train, _ = make_speakers(CFG.seed, CFG.n_train_speakers, CFG.n_dev_speakers)
    assert any("breath" in s.variant_text for s in train)
    subsets = ("train-clean", "dev-clean")
    one = ensure_corpus(CFG, subsets, root=tmp_path / "one", jobs=1, progress=False)
    three = ensure_corpus(CFG, subsets, root=tmp_path / "three", jobs=3, progress=False)
    for subset in subsets:
        assert _digest(one / "LibriSpeech" / subset) == _digest(three / "LibriSpeech" / subset), subset


def test_seed_changes_speakers_not_heldout_pool() -> None:
    a, _ = make_speakers(0, 3, 0)
    b, _ = make_speakers(1, 3, 0)
    assert [s.variant_text for s in a] != [s.variant_text for s in b]
    assert {s.sex for s in a} == {"F", "M"}


def test_variants_sound_different_from_their_base(tmp_path: Path) -> None:
    from scipy.signal import welch

    from core.data.synth.espeak import Espeak, prepare_data_dir

    train, dev = make_speakers(0, 6, 2)
    espeak = Espeak(prepare_data_dir(tmp_path, {s.variant_name: s.variant_text for s in train + dev}))
    text = "and the lord spake unto moses saying"

    def spectrum(voice: str) -> np.ndarray:
        espeak.set_voice(voice)
        return np.log(welch(espeak.synth(text), espeak.sample_rate, nperseg=1024)[1] + 1e-12)

    same = np.mean(np.abs(spectrum("en-us") - spectrum("en-us")))
    for s in train + dev:
        assert np.mean(np.abs(spectrum(s.voice) - spectrum(s.accent))) > 2 * same + 0.2, s.voice
