"""oneDNN's kernel cache, set where it takes effect and recorded as it is in effect.

oneDNN keeps the kernels it builds (one per layer and input shape) in one process-wide LRU cache, 1024 entries by
default, whose size it reads from ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` once, when it builds its first kernel.  The
interleaved variants of a run would evict each other's kernels at 1024, so each repeat after another variant would
time kernel building; the suite asks for 16384.  Setting the variable after oneDNN has started changes nothing, and
torch exposes no way to read the capacity back, so every entry point calls :func:`ensure_cache` before importing
torch and the run records :func:`in_effect`: the value when it was set before torch was imported (or was in the
process's environment from its start), else ``UNKNOWN``.  Standard library only: the console script calls it first.
"""
from __future__ import annotations

import os
import sys

ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
CAPACITY = "16384"
UNKNOWN = "unknown: set after oneDNN started"
_decided: dict[str | None, str] = {}  # env value -> what was in effect when this process first saw it


def _from_process_start(value: str) -> bool:
    """Whether ``ENV=value`` was in the environment this process started with (Linux: /proc/self/environ)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            return f"{ENV}={value}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def ensure_cache() -> str:
    """Ask for CAPACITY unless the user set a value; return the value in effect (or UNKNOWN)."""
    os.environ.setdefault(ENV, CAPACITY)
    return in_effect()


def in_effect() -> str:
    """The capacity oneDNN uses in this process, as far as can be known (see the module docstring)."""
    value = os.environ.get(ENV)
    if value not in _decided:
        torch_started = "torch" in sys.modules  # oneDNN may have built kernels already
        known = value is not None and (not torch_started or _from_process_start(value))
        _decided[value] = value if known else (UNKNOWN if value is not None or torch_started else "1024 (default)")
    return _decided[value]
