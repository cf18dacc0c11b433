"""``footprint corpus check ROOT/SUBSET``: count, measure and list every problem of a LibriSpeech subset.

Two passes.  :func:`core.data.librispeech.read_subset` pairs transcripts with audio and reads each
file's header (missing audio, missing transcript line, unreadable header, empty audio, characters
outside the vocabulary, other rate/channels).  Then every kept file is **decoded in full**, because a
FLAC whose header is intact but whose body is truncated or corrupt passes the header read and only
fails (or comes up short) when decoded: that is reported as ``unreadable``.  An all-zero file decodes
fine but is almost certainly a broken export, so it is reported as a ``silent`` warning.

Policy for another sample rate or channel count (decided, tested): **convert, do not refuse.**
The reader keeps such a file, reports a non-fatal ``converted`` warning (and logs it), and
:func:`core.data.librispeech.load_audio` downmixes to mono and resamples to 16 kHz on load.  Users
bringing their own recordings in LibriSpeech layout want them measured; the warning makes the
conversion visible, and the manifest records each file's original rate and channels.

Output (stdout, the command's result): subset, utterance/speaker/chapter counts, hours, mean and
max duration, the manifest content hash, then one line per problem
(``ERROR|WARNING <kind>: <utt_id> (<file>): <detail>``), never a traceback.

Exit codes:

* ``0``: no fatal problems (warnings such as ``converted`` or ``silent`` allowed);
* ``1``: at least one fatal problem; with ``--on-error stop`` the first fatal problem is printed as one
  line on stderr and checking stops there;
* ``2``: the check could not run at all (not a directory, no LibriSpeech layout), one line on stderr.

The printed hash covers the utterances that survive both passes.  It equals
``read_subset(dir).content_hash`` whenever the decode pass finds no fatal problem, so a clean check
vouches for the hash every later result row carries.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from core.data import resolve_data
from core.data.librispeech import Manifest, OnError, Problem, Utterance, read_subset
from core.errors import FootprintError

log = logging.getLogger(__name__)

_BLOCK_FRAMES = 1 << 16  # decode in blocks: bounded memory even for hour-long files


class FatalProblemFound(FootprintError):
    """Raised under ``on_error="stop"`` at the first fatal problem; its message is that one line."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class CheckResult:
    """The manifest of utterances that passed both passes, carrying every problem found."""

    manifest: Manifest
    decoded_files: int

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.manifest.problems if p.fatal]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.manifest.problems if not p.fatal]

    @property
    def chapters(self) -> int:
        return len({(u.speaker, u.chapter) for u in self.manifest.utterances})

    @property
    def exit_code(self) -> int:
        return 1 if self.fatal else 0

    def lines(self) -> list[str]:
        """The command's result lines (stdout)."""
        m = self.manifest
        durations = [u.duration_s for u in m.utterances]
        mean = f"{statistics.fmean(durations):.2f} s" if durations else "n/a"
        longest = f"{max(durations):.2f} s" if durations else "n/a"
        out = [
            f"subset      {m.subset} ({Path(m.root) / m.subset})",
            f"utterances  {len(m.utterances)} usable, {m.skipped} skipped (fatal problems)",
            f"speakers    {len(m.speakers)}",
            f"chapters    {self.chapters}",
            f"hours       {m.hours:.4f} h ({m.total_seconds:.1f} s)",
            f"duration    mean {mean}, max {longest}",
            f"manifest    {m.content_hash}",
            f"problems    {len(self.fatal)} fatal, {len(self.warnings)} warning(s)",
        ]
        # Errors first, then warnings; each group in utterance order (stable, diff-friendly output).
        for p in sorted(m.problems, key=lambda p: (not p.fatal, p.utt_id, p.kind, p.path)):
            out.append(str(p))
        verdict = "OK" if not self.fatal else f"FAILED: {len(self.fatal)} fatal problem(s)"
        out.append(f"result      {verdict} (exit {self.exit_code})")
        return out


@contextlib.contextmanager
def _quiet_reader() -> Iterator[None]:
    # The checker prints every problem as a result line; the reader's own log lines would repeat them.
    reader_log = logging.getLogger("core.data.librispeech")
    old = reader_log.level
    reader_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        reader_log.setLevel(old)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def decode_problems(utt: Utterance) -> list[Problem]:
    """Decode one file completely; report corrupt/truncated bodies (fatal) and all-zero audio (warning)."""
    frames, expected = 0, -1
    peak = 0.0
    try:
        with sf.SoundFile(utt.path) as f:
            expected = f.frames
            while True:
                block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if not len(block):
                    break
                frames += len(block)
                peak = max(peak, float(np.max(np.abs(block))))
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types; report as one line
        return [Problem(utt.utt_id, utt.path, "unreadable",
                        f"decoding failed after {frames} of {expected} frames: {_one_line(exc)}")]
    if frames != expected:
        # Some truncations decode "cleanly" but short; the header's frame count exposes them.
        return [Problem(utt.utt_id, utt.path, "unreadable",
                        f"decoded {frames} frames but the header says {expected} (truncated file?)")]
    if peak == 0.0:
        return [Problem(utt.utt_id, utt.path, "silent", f"all {frames} samples are zero", fatal=False)]
    return []


def check_subset(subset_dir: str | Path, on_error: OnError = "skip",
                 progress: bool | None = None) -> CheckResult:
    """Run both passes over one subset directory (or data spec such as ``embedded:dev-clean``).

    ``on_error="stop"`` raises :class:`FatalProblemFound` at the first fatal problem (header pass
    first, then decode pass in utterance order).  ``progress=None`` shows a tqdm bar only on a terminal.
    """
    from tqdm import tqdm  # runtime dependency, imported only when a check actually runs

    subset_dir = resolve_data(subset_dir)
    with _quiet_reader():
        header = read_subset(subset_dir, on_error="skip", check_audio=True)
    problems = list(header.problems)
    if on_error == "stop":
        first = next((p for p in problems if p.fatal), None)
        if first is not None:
            raise FatalProblemFound(first)
    kept: list[Utterance] = []
    bar = tqdm(header.utterances, desc=f"decoding {header.subset}", unit="file",
               disable=(None if progress is None else not progress), file=sys.stderr)
    with bar:
        for utt in bar:
            found = decode_problems(utt)
            for p in found:
                log.debug("%s", p)  # printed as a result line by the CLI
                if p.fatal and on_error == "stop":
                    raise FatalProblemFound(p)
            problems.extend(found)
            if not any(p.fatal for p in found):
                kept.append(utt)
    manifest = Manifest(header.root, header.subset, tuple(kept), tuple(problems))
    return CheckResult(manifest, decoded_files=len(header.utterances))


def cli_check(args: argparse.Namespace) -> int:
    """Handler of ``footprint corpus check``; returns the exit code documented above."""
    try:
        result = check_subset(args.subset_dir, on_error=getattr(args, "on_error", "skip"))
    except FatalProblemFound as exc:
        print(f"stopped at the first fatal problem (--on-error stop): {exc}", file=sys.stderr)
        return 1
    for line in result.lines():
        print(line)
    return result.exit_code

