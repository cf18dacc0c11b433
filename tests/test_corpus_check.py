"""``footprint corpus check`` on generated LibriSpeech-layout trees: every bad file is named, once, as one line."""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from footprint.cli import main
from core.data import resolve_data
from core.data.check import FatalProblemFound, check_subset
from core.data.librispeech import read_subset

SPK, CH = "1272", "128104"


def uid(n: int, spk: str = SPK, ch: str = CH) -> str:
    return f"{spk}-{ch}-{n:04d}"


def noise(seconds: float, rate: int = 16_000, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
    return (rng.standard_normal(shape) * 0.1).astype(np.float32)


def write_chapter(subset: Path, spk: str, ch: str, lines: dict[str, str]) -> Path:
    d = subset / spk / ch
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{spk}-{ch}.trans.txt").write_text("".join(f"{k} {v}\n" for k, v in sorted(lines.items())))
    return d


def make_clean_tree(root: Path) -> Path:
    """Two speakers, three chapters, five good utterances of known length."""
    subset = root / "LibriSpeech" / "dev-clean"
    layout = {("1272", "128104"): [1.0, 1.5], ("1272", "135031"): [2.0], ("2277", "149896"): [0.5, 3.0]}
    for (spk, ch), durations in layout.items():
        lines = {uid(i, spk, ch): "HELLO WORLD IT'S ME" for i in range(len(durations))}
        d = write_chapter(subset, spk, ch, lines)
        for i, dur in enumerate(durations):
            sf.write(d / f"{uid(i, spk, ch)}.flac", noise(dur, seed=i), 16_000, subtype="PCM_16")
    return subset


@dataclass
class Damaged:
    subset: Path
    chapter: Path
    bad: dict[str, tuple[str, str]]  # utt_id -> (kind, file name the line must mention)


def make_damaged_tree(root: Path) -> Damaged:
    subset = root / "LibriSpeech" / "dev-clean"
    texts = {uid(i): "A GOOD LINE" for i in range(12) if i != 7}  # 7: audio without transcript line
    texts[uid(9)] = "lower case words"
    texts[uid(10)] = "CHAPTER 12 BEGINS"
    d = write_chapter(subset, SPK, CH, texts)
    trans = f"{SPK}-{CH}.trans.txt"
    for i in (0, 1, 2, 3, 7):
        sf.write(d / f"{uid(i)}.flac", noise(1.0, seed=i), 16_000, subtype="PCM_16")
    for i in (9, 10):
        sf.write(d / f"{uid(i)}.flac", noise(0.5, seed=i), 16_000, subtype="PCM_16")
    # 2: corrupt body, intact header.
    raw = bytearray((d / f"{uid(2)}.flac").read_bytes())
    raw[len(raw) // 3: len(raw) // 3 + 2000] = np.random.default_rng(1).integers(0, 256, 2000, np.uint8).tobytes()
    (d / f"{uid(2)}.flac").write_bytes(bytes(raw))
    # 3: truncated body (header still announces every frame).
    raw3 = (d / f"{uid(3)}.flac").read_bytes()
    (d / f"{uid(3)}.flac").write_bytes(raw3[: len(raw3) // 2])
    # 4: valid container with no samples.
    sf.write(d / f"{uid(4)}.wav", np.zeros(0, np.float32), 16_000, subtype="PCM_16")
    # 5: zero-byte file.
    (d / f"{uid(5)}.flac").write_bytes(b"")
    # 6: transcript line only (no audio written).
    # 8: 8 kHz stereo, converted on load.
    sf.write(d / f"{uid(8)}.flac", noise(1.0, rate=8_000, channels=2, seed=8), 8_000, subtype="PCM_16")
    # 11: digital silence.
    sf.write(d / f"{uid(11)}.flac", np.zeros(16_000, np.float32), 16_000, subtype="PCM_16")
    bad = {
        uid(2): ("unreadable", f"{uid(2)}.flac"),
        uid(3): ("unreadable", f"{uid(3)}.flac"),
        uid(4): ("empty", f"{uid(4)}.wav"),
        uid(5): ("unreadable", f"{uid(5)}.flac"),
        uid(6): ("missing-audio", trans),
        uid(7): ("missing-transcript", f"{uid(7)}.flac"),
        uid(8): ("converted", f"{uid(8)}.flac"),
        uid(9): ("bad-chars", trans),
        uid(10): ("bad-chars", trans),
        uid(11): ("silent", f"{uid(11)}.flac"),
    }
    return Damaged(subset, d, bad)


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["corpus", "check", *args], groups=["corpus"])
    out, err = capsys.readouterr()
    return code, out, err


def test_damaged_tree_names_every_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dmg = make_damaged_tree(tmp_path)
    code, out, err = run_check(capsys, str(dmg.subset))
    assert code == 1
    assert "Traceback" not in out + err
    problem_lines = [ln for ln in out.splitlines() if ln.startswith(("ERROR ", "WARNING "))]
    for utt_id, (kind, fname) in dmg.bad.items():
        hits = [ln for ln in problem_lines if f" {utt_id} " in ln]
        assert len(hits) == 1, (utt_id, hits)  # exactly one line per bad file
        line = hits[0]
        assert f"{kind}:" in line and fname in line, line
        assert line.startswith("WARNING" if kind in ("converted", "silent") else "ERROR"), line
    assert len(problem_lines) == len(dmg.bad)
    assert "8000 Hz x 2 ch" in out
    # Good utterances (0, 1) and the warned ones (8, 11) are usable; the eight with fatal problems are skipped.
    assert "utterances  4 usable, 8 skipped" in out
    assert "problems    8 fatal, 2 warning(s)" in out
    assert "result      FAILED: 8 fatal problem(s) (exit 1)" in out


def test_truncated_and_corrupt_flac_pass_the_header_read_but_fail_the_decode(tmp_path: Path) -> None:
    dmg = make_damaged_tree(tmp_path)
    header_only = read_subset(dmg.subset)
    kept = {u.utt_id for u in header_only.utterances}
    assert {uid(2), uid(3)} <= kept  # the header pass alone cannot see them
    result = check_subset(dmg.subset, progress=False)
    assert {uid(2), uid(3)}.isdisjoint(u.utt_id for u in result.manifest.utterances)
    kinds = {(p.utt_id, p.kind) for p in result.fatal}
    assert (uid(2), "unreadable") in kinds and (uid(3), "unreadable") in kinds


def test_on_error_stop_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dmg = make_damaged_tree(tmp_path)
    code, out, err = run_check(capsys, str(dmg.subset), "--on-error", "stop")
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("stopped at the first fatal problem")
    assert "ERROR " in err and SPK in err


def test_on_error_stop_reaches_decode_pass(tmp_path: Path) -> None:
    # Only a truncated file: the header pass is clean, the decode pass must stop on it.
    subset = make_clean_tree(tmp_path)
    victim = subset / "2277" / "149896" / f"{uid(1, '2277', '149896')}.flac"
    victim.write_bytes(victim.read_bytes()[:2000])
    with pytest.raises(FatalProblemFound) as info:
        check_subset(subset, on_error="stop", progress=False)
    assert info.value.problem.kind == "unreadable" and str(victim) in str(info.value)


def test_clean_tree_exit_0_counts_and_stable_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subset = make_clean_tree(tmp_path)
    code, out, err = run_check(capsys, str(subset))
    assert code == 0, out + err
    assert "utterances  5 usable, 0 skipped" in out
    assert "speakers    2" in out
    assert "chapters    3" in out
    assert f"hours       {8.0 / 3600:.4f} h (8.0 s)" in out
    assert "duration    mean 1.60 s, max 3.00 s" in out
    assert "problems    0 fatal, 0 warning(s)" in out
    assert "result      OK (exit 0)" in out
    digest = read_subset(subset).content_hash
    assert f"manifest    {digest}" in out
    # Same tree again, and an identical copy elsewhere: same hash (the hash does not include the root path).
    code2, out2, _ = run_check(capsys, str(subset))
    other = make_clean_tree(tmp_path / "copy")
    code3, out3, _ = run_check(capsys, str(other))
    hash_line = [ln for ln in out.splitlines() if ln.startswith("manifest")]
    assert code2 == code3 == 0
    assert hash_line == [ln for ln in out2.splitlines() if ln.startswith("manifest")]
    assert hash_line == [ln for ln in out3.splitlines() if ln.startswith("manifest")]


def test_not_a_directory_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_check(capsys, str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "not a directory" in err


def test_embedded_spec_resolves_through_ensure_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    make_clean_tree(tmp_path)
    fake = types.ModuleType("core.data.synth.corpus")
    calls: list[tuple[str, ...]] = []

    def ensure_corpus(subsets: tuple[str, ...] = ("dev-clean", "dev-other"), **_: object) -> Path:
        calls.append(tuple(subsets))
        return tmp_path

    fake.ensure_corpus = ensure_corpus  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "core.data.synth.corpus", fake)
    assert resolve_data("embedded:dev-clean") == tmp_path / "LibriSpeech" / "dev-clean"
    assert resolve_data(str(tmp_path)) == tmp_path and resolve_data(tmp_path) == tmp_path
    code, out, _ = run_check(capsys, "embedded:dev-clean")
    assert code == 0 and "utterances  5 usable" in out
    assert calls == [("dev-clean",), ("dev-clean",)]


def test_progress_bar_over_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subset = make_clean_tree(tmp_path)
    check_subset(subset, progress=True)
    err = capsys.readouterr().err
    assert "decoding dev-clean" in err and "5/5" in err
