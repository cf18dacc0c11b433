"""The ``footprint`` command: one console script; each command group is a module of ``footprint.commands``.

Each group module exposes ``register_<group>(subparsers)`` and imports only the standard library at module level,
so ``footprint report`` never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from core.errors import FootprintError

log = logging.getLogger("footprint")

# group name -> module that registers it (imported when the parser is built; stdlib-only modules).
GROUPS: dict[str, str] = {
    "model": "footprint.commands.model",
    "corpus": "footprint.commands.corpus",
    "compress": "footprint.commands.compress",
    "bench": "footprint.commands.bench",
    "report": "footprint.commands.report",
    "run": "footprint.commands.run",
}


def build_parser(groups: Sequence[str] | None = None, prog: str = "footprint") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Measure and shrink the footprint of wav2vec 2.0 models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="group", metavar="GROUP")
    sub.required = True
    for name in groups or GROUPS:
        getattr(importlib.import_module(GROUPS[name]), f"register_{name}")(sub)
    return parser


def setup_logging(verbose: bool = False) -> None:
    """Our records on the console, other libraries' only when they are errors (core/console.py)."""
    from core import console

    console.setup(verbose)


def main(argv: Sequence[str] | None = None, groups: Sequence[str] | None = None,
         prog: str = "footprint") -> int:
    from bench.onednn import ensure_cache

    ensure_cache()  # the console script's first act: oneDNN reads its kernel-cache size once, when torch first uses it
    parser = build_parser(groups, prog=prog)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        result = args.func(args)
    except FootprintError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
