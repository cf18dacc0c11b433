"""Where a measurement came from: code version, library versions, hardware, host and time.

Cheap and dependency-free (torch/transformers are read only if already importable); every field falls back
to "" rather than failing, because a missing provenance field must never cost a measurement.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Provenance:
    git_commit: str
    git_dirty: bool | None
    torch_version: str
    transformers_version: str
    python_version: str
    cpu_model: str
    gpu_name: str
    hostname: str
    cpu_count: int
    platform: str

    def as_dict(self) -> dict:
        return asdict(self)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> tuple[str, bool | None]:
    """(commit, dirty): tracked files changed since the commit make it dirty; untracked files do not."""
    commit = _git("rev-parse", "HEAD") or os.environ.get("FOOTPRINT_GIT_COMMIT", "")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, (bool(status) if status is not None else None)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name(index: int = 0) -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(index)
    except Exception:  # noqa: BLE001
        pass
    return ""


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001
        return ""


@lru_cache(maxsize=1)
def collect() -> Provenance:
    commit, dirty = git_state()
    return Provenance(
        git_commit=commit, git_dirty=dirty, torch_version=_version("torch"),
        transformers_version=_version("transformers"), python_version=platform.python_version(),
        cpu_model=cpu_model(), gpu_name=gpu_name(), hostname=socket.gethostname(),
        cpu_count=os.cpu_count() or 0, platform=platform.platform(),
    )


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
