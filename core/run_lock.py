"""One writer per run folder: an exclusive ``flock`` on ``RUN_DIR/.lock`` while a run writes there.

Two ``footprint bench run`` processes given the same ``--out`` would interleave rows, meta.json and the CSV export;
the second now refuses at once, in one line naming the folder and the process that holds it.  The lock belongs to
the open file, so the kernel drops it however the holder ends (a kill -9 included): a ``.lock`` file left behind by
a crashed run holds stale text but blocks nothing, and the rerun resumes.  The file stays in place after a run
(removing it would let a third process lock a fresh file while a second still holds the old one).
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import logging
import os
import shlex
import socket
import sys
import time
from pathlib import Path

from core.errors import FootprintError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not guarded
    fcntl = None  # type: ignore[assignment]


def _holder_text(f: io.BufferedRandom) -> str:
    """"pid N on HOST since T" from the lock file (its holder may be writing it this very moment: retry)."""
    for _ in range(20):
        f.seek(0)
        raw = f.read().decode("utf-8", "replace")
        try:
            h = json.loads(raw)
            return f"pid {h['pid']} on {h['host']} since {h['since']}"
        except (ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "its pid unknown"


class RunLock:
    """``RunLock(run_dir).acquire()`` ... ``release()``; :class:`core.results.ResultsStore` holds one while open
    for writing."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._file: io.BufferedRandom | None = None

    def acquire(self) -> "RunLock":
        if fcntl is None or self._file is not None:
            return self
        # a file object, not a bare descriptor: if the owner is dropped without release, closing it frees the lock
        f = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), "r+b")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: another open file holds it (another process, or this one twice)
            holder = _holder_text(f)
            f.close()
            raise FootprintError(f"{self.run_dir}: in use by another footprint process ({holder}); wait for it or "
                                 "use another --out") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "command": shlex.join(sys.argv)}
        f.seek(0)
        f.truncate()
        f.write(json.dumps(info).encode())
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.seek(0)
            f.truncate()  # nobody holds it now: no stale pid to mislead a reader
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        except OSError as exc:  # the folder vanished or went read-only: closing frees the lock anyway
            log.debug("%s: %s", self.path, exc)
        finally:
            f.close()

    @property
    def held(self) -> bool:
        return self._file is not None
