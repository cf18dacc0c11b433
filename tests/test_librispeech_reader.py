"""The LibriSpeech-layout reader: manifest fields, a deterministic content hash, and the conversion policy."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.data.librispeech import load_audio, read_subset
from core.errors import FootprintError


def _write(subset: Path, spk: str, ch: str, items: dict[int, tuple[str, np.ndarray, int]]) -> None:
    d = subset / spk / ch
    d.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, (text, audio, rate) in sorted(items.items()):
        utt = f"{spk}-{ch}-{n:04d}"
        lines.append(f"{utt} {text}\n")
        sf.write(d / f"{utt}.flac", audio, rate, subtype="PCM_16")
    (d / f"{spk}-{ch}.trans.txt").write_text("".join(lines))


def _tone(seconds: float, rate: int = 16_000, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.fixture()
def subset(tmp_path: Path) -> Path:
    s = tmp_path / "LibriSpeech" / "dev-clean"
    _write(s, "84", "121123", {0: ("GO DO YOU HEAR", _tone(1.25), 16_000), 1: ("BUT IN LESS THAN", _tone(0.5), 16_000)})
    _write(s, "174", "50561", {0: ("FORGOTTEN TOO THE NAME OF GILLIAN", _tone(2.0), 16_000)})
    return s


def test_manifest_fields(subset: Path) -> None:
    m = read_subset(subset)
    assert m.subset == "dev-clean" and Path(m.root) == subset.parent
    assert [u.utt_id for u in sorted(m.utterances, key=lambda u: u.utt_id)] == \
        ["174-50561-0000", "84-121123-0000", "84-121123-0001"]
    u = next(u for u in m.utterances if u.utt_id == "84-121123-0000")
    assert (u.speaker, u.chapter, u.transcript) == ("84", "121123", "GO DO YOU HEAR")
    assert u.duration_s == pytest.approx(1.25) and u.sample_rate == 16_000 and u.channels == 1
    assert m.speakers == ["174", "84"] and m.total_seconds == pytest.approx(3.75)
    assert m.problems == ()


def test_content_hash_is_deterministic(subset: Path, tmp_path: Path) -> None:
    h = read_subset(subset).content_hash
    assert len(h) == 16 and h == read_subset(subset).content_hash
    # A copy elsewhere hashes the same (root path excluded) ...
    copy = tmp_path / "elsewhere" / "dev-clean"
    shutil.copytree(subset, copy)
    assert read_subset(copy).content_hash == h
    # ... and any change of transcript or duration changes it.
    trans = copy / "84" / "121123" / "84-121123.trans.txt"
    trans.write_text(trans.read_text().replace("GO DO", "GO TO"))
    assert read_subset(copy).content_hash != h
    shutil.rmtree(copy)
    shutil.copytree(subset, copy)
    sf.write(copy / "84" / "121123" / "84-121123-0001.flac", _tone(0.75), 16_000, subtype="PCM_16")
    assert read_subset(copy).content_hash != h
    # subset_of takes the first n in id order.
    assert [u.utt_id for u in read_subset(subset).subset_of(1).utterances] == ["174-50561-0000"]


def test_other_rate_and_channels_are_converted_with_a_warning(subset: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    # Policy: keep the file, warn (non-fatal problem + logged WARNING), convert to 16 kHz mono on load.
    _write(subset, "251", "136532", {0: ("STEREO AT EIGHT KILOHERTZ", _tone(1.0, rate=8_000, channels=2), 8_000)})
    with caplog.at_level(logging.WARNING, logger="core.data.librispeech"):
        m = read_subset(subset)
    utt = next(u for u in m.utterances if u.utt_id == "251-136532-0000")
    assert (utt.sample_rate, utt.channels) == (8_000, 2) and utt.duration_s == pytest.approx(1.0)
    [problem] = m.problems
    assert problem.kind == "converted" and not problem.fatal and m.skipped == 0
    assert "8000 Hz x 2 ch" in problem.detail and "251-136532-0000" in str(problem)
    assert any(r.levelno == logging.WARNING and "converted" in r.getMessage() for r in caplog.records)
    audio = load_audio(utt)
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == 16_000
    ref = _tone(1.0)  # the same 220 Hz tone generated at 16 kHz
    assert np.max(np.abs(audio[200:-200] - ref[200:-200])) < 0.02


def test_stop_raises_one_line(subset: Path) -> None:
    (subset / "84" / "121123" / "84-121123-0001.flac").unlink()
    with pytest.raises(FootprintError) as info:
        read_subset(subset, on_error="stop")
    assert "missing-audio" in str(info.value) and "\n" not in str(info.value)
    m = read_subset(subset, on_error="skip")
    assert len(m.utterances) == 2 and m.skipped == 1


def test_load_audio_on_a_corrupt_file_is_one_line(subset: Path) -> None:
    m = read_subset(subset)
    utt = m.utterances[0]
    raw = Path(utt.path).read_bytes()
    Path(utt.path).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FootprintError) as info:
        load_audio(utt)
    assert utt.path in str(info.value) and "\n" not in str(info.value)
