"""Load PyTorch checkpoints without running anything they contain.

Every checkpoint goes through ``torch.load(path, map_location="cpu", weights_only=True)``: PyTorch's restricted
unpickler, which only rebuilds tensors, containers and primitive values, and refuses any other global *before*
it is imported or called.  On top of that default we admit, for the duration of one call only, a short
allow-list of classes that fairseq checkpoints really contain:

* ``argparse.Namespace``: the legacy ``args`` of wav2vec_big_960h.pt and its ``args.w2v_args``.  Rebuilt with
  ``object.__new__`` plus ``__dict__.update``; no constructor and no user code runs.
* numpy scalar/array reconstruction: fairseq stores ``numpy.float64`` losses and numpy arrays in
  ``extra_state`` (see facebookresearch/fairseq#5603).  These rebuild a dtype and a buffer from bytes; an
  object array's items are themselves unpickled under the same restrictions.

Anything else (``os.system``, ``builtins.eval``, a fairseq or omegaconf class, ...) raises
:class:`UnsafeCheckpointError` naming the file and the global.  Both the zip format (torch >= 1.6) and the
legacy plain-pickle format (``_use_new_zipfile_serialization=False``) go through the same restricted unpickler.
"""
from __future__ import annotations

import _compat_pickle
import argparse
import io
import logging
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any

from core.errors import FootprintError, UnsafeCheckpointError

log = logging.getLogger(__name__)

_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
_WEIGHTS_ONLY = "Weights only load failed"
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
                         "BINSTRING", "STRING"})
_NO_PUSH_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "PROTO", "FRAME", "STOP", "MARK"})


def _numpy_safe_globals() -> list[Any]:
    """numpy reconstruction helpers under both spellings (numpy 1.x ``numpy.core``, numpy 2.x ``numpy._core``)."""
    try:
        import numpy as np
    except ImportError:  # numpy is a dependency, but loading must not hinge on it
        return []
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    out: list[Any] = [np.ndarray, np.dtype]
    for name in ("_reconstruct", "scalar"):
        fn = getattr(multiarray, name)
        # A pickle names the module it was written under; register both so old and new files load.
        out += [(fn, f"numpy.core.multiarray.{name}"), (fn, f"numpy._core.multiarray.{name}")]
    # numpy >= 1.25 pickles dtypes through their concrete classes (numpy.dtypes.Float64DType, ...).
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in ("Float16DType", "Float32DType", "Float64DType", "Int8DType", "Int16DType", "Int32DType",
                     "Int64DType", "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType", "BoolDType"):
            cls = getattr(dtypes, name, None)
            if cls is not None:
                out.append(cls)
    return out


def safe_globals_list() -> list[Any]:
    """The allow-list admitted on top of PyTorch's weights-only defaults (see the module docstring)."""
    return [argparse.Namespace, *_numpy_safe_globals()]


def _is_zip(path: Path) -> bool:
    return zipfile.is_zipfile(path)


def _looks_like_pickle(path: Path) -> bool:
    """A zip checkpoint, or a pickle with a protocol header (torch.save writes protocol 2 or later)."""
    if _is_zip(path):
        return True
    with open(path, "rb") as fh:
        return fh.read(1) == b"\x80"


def _canonical(module: str, attr: str) -> str:
    """``module.attr`` under its Python 3 name (protocol-2 pickles say ``__builtin__`` for ``builtins``)."""
    module, attr = _compat_pickle.NAME_MAPPING.get((module, attr), (module, attr))
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{attr}"


def pickle_globals(stream: IO[bytes], max_pickles: int = 5) -> list[str]:
    """Globals (``module.name``) that the pickles at the start of ``stream`` would import, in order.

    A static walk over the opcodes with :mod:`pickletools`: nothing is imported or called.  A legacy torch file
    is several pickles in a row (magic number, protocol, sys info, the object, storage keys), hence
    ``max_pickles``.  ``STACK_GLOBAL`` takes its two names from the values pushed just before it.
    """
    found: list[str] = []
    for _ in range(max_pickles):
        pushed: list[object] = []
        memo: dict[object, object] = {}
        try:
            for op, arg, _pos in pickletools.genops(stream):
                name = op.name
                if name in ("GLOBAL", "INST"):
                    module, _, attr = str(arg).partition(" ")
                    found.append(_canonical(module, attr))
                    pushed.append(None)
                elif name == "STACK_GLOBAL":
                    module, attr = (pushed[-2:] if len(pushed) >= 2 else [None, None])
                    found.append(_canonical(module, attr) if isinstance(module, str) and isinstance(attr, str)
                                 else "<dynamically named global>")
                    pushed.append(None)
                elif name in _STRING_OPS:
                    pushed.append(arg)
                elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[arg] = pushed[-1] if pushed else None
                elif name == "MEMOIZE":
                    memo[len(memo)] = pushed[-1] if pushed else None
                elif name in ("GET", "BINGET", "LONG_BINGET"):
                    pushed.append(memo.get(arg))
                elif name not in _NO_PUSH_OPS:
                    pushed.append(None)
        except Exception:  # end of the pickles (raw storage bytes follow) or a damaged file
            break
    return found


def _checkpoint_globals(path: Path) -> list[str]:
    """Globals named by the object pickle of a zip or legacy checkpoint (static scan)."""
    try:
        if _is_zip(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                if not names:
                    return []
                with zf.open(names[0]) as fh:
                    return pickle_globals(io.BytesIO(fh.read()), max_pickles=1)
        with open(path, "rb") as fh:
            return pickle_globals(fh)
    except Exception:  # the scan only improves the message; the refusal stands without it
        return []


def _disallowed(names: list[str], allowed: list[Any]) -> list[str]:
    """The names that neither PyTorch's weights-only defaults nor our allow-list admit (order kept, no repeats)."""
    try:
        from torch import _weights_only_unpickler as wou

        ok = set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())
        fallback = False
    except Exception:  # private API moved: trust torch's own rebuild helpers, name everything else
        ok, fallback = set(), True
    for item in allowed:
        ok.add(item[1] if isinstance(item, tuple) else f"{item.__module__}.{item.__qualname__}")
    out: list[str] = []
    for name in names:
        if name in ok or name in out or (fallback and name.startswith(("torch.", "collections.OrderedDict"))):
            continue
        out.append(name)
    return out


def load_checkpoint(path: str | Path) -> Any:
    """Load ``path`` with ``weights_only=True`` and the scoped allow-list; never executes pickled code.

    Raises :class:`UnsafeCheckpointError` when the pickle would import or call anything else, and
    :class:`FootprintError` for a missing, empty or corrupt file.  Both carry one line naming the file.
    """
    import torch

    p = Path(path)
    if not p.exists():
        raise FootprintError(f"{p}: no such file")
    if p.is_dir():
        raise FootprintError(f"{p}: is a directory, expected a checkpoint file (.pt)")
    if p.stat().st_size == 0:
        raise FootprintError(f"{p}: empty file, not a PyTorch checkpoint")

    allowed = safe_globals_list()
    try:
        # safe_globals is a context manager: the allow-list is not left behind in the process.
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            # A non-default pickle protocol only matters if the load then fails, which we report ourselves.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if _WEIGHTS_ONLY not in msg:
            raise FootprintError(f"{p}: corrupt or not a PyTorch checkpoint ({_first_line(msg)})") from None
        with torch.serialization.safe_globals(allowed):
            offenders = _disallowed(_checkpoint_globals(p), allowed)
        if not offenders:
            m = _GLOBAL_RE.search(msg)
            offenders = [m.group(1)] if m else []
        if not offenders and not _looks_like_pickle(p):
            # The restricted unpickler also stops at bytes that are no pickle at all: that is damage, not danger.
            raise FootprintError(f"{p}: corrupt or not a PyTorch checkpoint ({_reason(msg)})") from None
        what = (f"its pickle would import {', '.join(offenders)}" if offenders
                else f"its pickle uses an instruction the safe loader does not run ({_reason(msg)})")
        raise UnsafeCheckpointError(
            f"{p}: refused to load: {what}; only tensors, plain containers, argparse.Namespace and numpy "
            f"values are allowed, and nothing was executed") from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError, zipfile.BadZipFile, AttributeError,
            TypeError, IndexError, UnicodeDecodeError) as exc:
        raise FootprintError(
            f"{p}: corrupt or not a PyTorch checkpoint ({type(exc).__name__}: {_first_line(str(exc))})") from None
    log.debug("loaded %s (%s format)", p, "zip" if _is_zip(p) else "legacy pickle")
    return obj


def _reason(msg: str) -> str:
    """The useful part of PyTorch's multi-paragraph weights-only message."""
    for line in msg.splitlines():
        line = line.strip().removeprefix("Please file an issue with the following so that we can make "
                                         "`weights_only=True` compatible with your use case: ")
        if line and not line.startswith(("Weights only load failed", "Check the documentation")):
            return _first_line(line.replace("WeightsUnpickler error:", "").strip() or line)
    return "unknown"


def _first_line(text: str, limit: int = 160) -> str:
    line = (text.strip().splitlines() or ["no detail"])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."
