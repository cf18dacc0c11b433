"""What the memory children's fork server imports once (``bench.memory.PRELOAD``, and the modules the runner's loader
names), so that each child starts with the libraries instead of importing them again; their import-time notices
(torchao's CUDA libraries, torch's pytree deprecations) stay off the console, as in every other process
(``core.console.quiet_import``).

Then the server lists its resident pages of file-backed mappings (:data:`RESIDENT`): a forked child inherits no
page-table entries for them, and touches them (:func:`touch_resident`) before it takes its baseline, so that the
libraries' pages the imports brought in count there, as in a spawned child, and not in the variant's figure.
"""
from __future__ import annotations

import importlib
import os

import numpy as np

from core import console

with console.quiet_import():
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import Wav2Vec2ForCTC  # noqa: F401

    import core.inference  # noqa: F401

    # what the runner's loader imports on every build (its ``preload``, named by the command layer), passed
    # through the server's environment by bench.memory
    for _name in filter(None, os.environ.get("W2V_FOOTPRINT_CHILD_PRELOAD", "").split(",")):
        importlib.import_module(_name)

PRESENT = np.uint64(1 << 63)  # /proc/PID/pagemap: bit 63 = page present (the Linux kernel's pagemap.rst)


def resident_file_pages() -> np.ndarray:
    """The addresses of this process's present pages in readable mappings of regular files (libraries, data
    files); devices and deleted files left out.  Empty where /proc/self/pagemap cannot be read."""
    page = os.sysconf("SC_PAGE_SIZE")
    found = []
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
        with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
            for line in lines:
                fields = line.split(maxsplit=5)
                path = fields[5] if len(fields) == 6 else ""
                if not path.startswith("/") or path.startswith("/dev/") or path.endswith("(deleted)") \
                        or "r" not in fields[1]:
                    continue
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                pagemap.seek(lo // page * 8)
                entries = np.frombuffer(pagemap.read((hi - lo) // page * 8), dtype=np.uint64)
                found.append(lo + np.flatnonzero(entries & PRESENT).astype(np.int64) * page)
    except OSError:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


RESIDENT = resident_file_pages()  # the server's, listed once at its start; a forked child inherits the list


def touch_resident(addresses: np.ndarray | None = None) -> int:
    """Read one byte of each page in ``addresses`` (default :data:`RESIDENT`), so that this process maps them;
    how many pages.  In a spawned child they are mapped already, and touching them changes nothing."""
    import ctypes

    addrs = RESIDENT if addresses is None else addresses
    for a in addrs.tolist():
        ctypes.c_char.from_address(a).value  # noqa: B018 - the read is the point
    return len(addrs)
