"""Every option of ``footprint compress`` checked before a model is built or a file written: a bad value is one
line, ``--option VALUE: problem`` (a :class:`core.errors.FootprintError`), never a traceback after minutes of work.

Standard library only at module level (the CLI is built before any command runs); checks that need the project
(model specs, data specs, devices) import it when they run.  Each command's handler calls :func:`check` with a
table ``{dest: [check, ...]}``; a check returns the problem (or None).  Checks that need the model (how many conv
or transformer layers it has) read its ``config.json`` only, when the spec names one on disk (``embedded`` or a
directory); a recipe spec is checked again by the method once it is built.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

Check = Callable[[Any], "str | None"]


class OneLineParser(argparse.ArgumentParser):
    """argparse's own errors (an unknown choice, a value that is not a number, a missing option) as one line,
    like every other error of the CLI, instead of the usage block followed by the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def fail(dest: str, value: Any, problem: str) -> NoReturn:
    from core.errors import FootprintError

    if isinstance(value, float):  # as typed: 0 rather than 0.0
        value = f"{value:g}"
    raise FootprintError(f"{flag(dest)} {value}: {problem}")


def check(args: argparse.Namespace, table: Mapping[str, Check | Iterable[Check]]) -> None:
    """Run each option's checks (unset options, None, are skipped); the first problem is raised."""
    for dest, checks in table.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        for c in ([checks] if callable(checks) else checks):
            problem = c(value)
            if problem:
                fail(dest, value, problem)


# -- numbers ---------------------------------------------------------------------------------------------------
def _bad_number(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "expected a number"
    if not math.isfinite(v):
        return "expected a finite number"
    return None


def above(lo: float) -> Check:
    return lambda v: _bad_number(v) or (None if v > lo else f"must be greater than {lo:g}")


def at_least(lo: float) -> Check:
    return lambda v: _bad_number(v) or (None if v >= lo else f"must be at least {lo:g}")


def within(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Check:
    """``lo <= v <= hi``, an end left out when open: ``within(0, 1, lo_open=True)`` is (0, 1]."""
    span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def c(v: Any) -> str | None:
        bad = _bad_number(v)
        if bad:
            return bad
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        return None if ok else f"must be in {span}"
    return c


POSITIVE = above(0)
NON_NEGATIVE = at_least(0)
COUNT = at_least(1)  # an int option counting things (steps, utterances, threads)
FRACTION = within(0, 1, lo_open=True)  # a share kept: (0, 1]
PROBABILITY = within(0, 1)


# -- paths and specs -------------------------------------------------------------------------------------------
def existing_dir(v: str) -> str | None:
    p = Path(v).expanduser()
    if p.is_file():
        return "a file, not a directory"
    return None if p.is_dir() else "no such directory"


def out_dir(v: str) -> str | None:
    """An output folder: may exist (resume) but must be a folder, and no parent of it may be a file."""
    p = Path(v).expanduser()
    for q in (p, *p.parents):
        if q.exists():
            if q.is_dir():
                return None
            return "a file, not a directory" if q == p else f"{q} is a file"
    return None


@contextlib.contextmanager
def quiet_optional_imports() -> Iterator[None]:
    """Resolving a recipe asks each method whether it is available, which imports torchao; its import logs
    warnings about kernels this machine lacks (no Triton, a CUDA-only library), lines that would surround the
    one line of a bad option.  They say nothing about the option."""
    lg = logging.getLogger("torchao")
    old = lg.level
    lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        lg.setLevel(old)


def _strip(msg: str, value: str) -> str:
    """A project error that starts with the value itself, without it (the line already names it)."""
    return msg[len(value) + 2:] if msg.startswith(f"{value}: ") else msg


def model_spec(recipes: bool = True) -> Check:
    """``embedded``, a model directory (its files read, not loaded), or, when ``recipes``, a recipe."""
    def c(v: str) -> str | None:
        from compress.variants import ARCH_PREFIX, _looks_like_path, check_model_spec
        from core.errors import FootprintError

        spec = str(v).strip()
        try:
            check_model_spec(spec)
            p = Path(spec).expanduser()
            if spec == "embedded" or p.is_dir():
                return None
            if not recipes or spec.startswith(ARCH_PREFIX) or _looks_like_path(spec):
                return "expected embedded or a model directory"
            from compress.methods.registry import parse_recipe

            with quiet_optional_imports():
                parse_recipe(spec)
        except FootprintError as exc:
            return _strip(str(exc), spec)
        return None
    return c


def data_spec(v: str) -> str | None:
    """``embedded:<subset>`` (the synthetic corpus) or a LibriSpeech subset directory."""
    if str(v).startswith("embedded:"):
        from core.data.synth.corpus import SUBSETS

        subset = str(v).split(":", 1)[1].strip() or "train-clean"
        return None if subset in SUBSETS else f"unknown synthetic subset {subset!r} ({' | '.join(SUBSETS)})"
    return existing_dir(v)


def device(v: str) -> str | None:
    from core.device import Device
    from core.errors import FootprintError

    if v == "auto":
        return None
    try:
        Device.parse(v).check_available()
    except FootprintError as exc:
        return _strip(str(exc), f"--device {v}")
    return None


def json_object(v: str) -> str | None:
    try:
        obj = json.loads(v)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc})"
    return None if isinstance(obj, dict) else "expected a JSON object {...}"


def int_list(v: str) -> str | None:
    try:
        items = [int(x) for x in str(v).split(",") if x.strip()]
    except ValueError:
        return "expected a comma list of integers"
    if not items:
        return "expected at least one integer"
    return "listed twice" if len(set(items)) != len(items) else None


# -- the model an option refers to -----------------------------------------------------------------------------
def model_config(spec: str | None) -> dict[str, Any] | None:
    """The ``config.json`` of ``embedded`` or a model directory (read, not built); None for a recipe."""
    if spec is None:
        return None
    if spec == "embedded":
        from compress.variants import teacher_dir

        d = teacher_dir()
    else:
        d = Path(spec).expanduser()
    try:
        return json.loads((d / "config.json").read_text())
    except (OSError, ValueError):
        return None  # the spec's own check says what is wrong with it


def n_conv_layers(cfg: Mapping[str, Any] | None) -> int | None:
    dims = (cfg or {}).get("conv_dim")
    return len(dims) if isinstance(dims, list) else None


def n_layers(cfg: Mapping[str, Any] | None) -> int | None:
    n = (cfg or {}).get("num_hidden_layers")
    return n if isinstance(n, int) else None
