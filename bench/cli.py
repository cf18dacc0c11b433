"""The ``footprint`` command: one console script, subcommand groups contributed by each package.

Each group lives in its own package's ``cli.py`` and exposes ``register(subparsers)``.  Those modules
import only the standard library at module level, so ``footprint report`` never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from bench.errors import FootprintError

log = logging.getLogger("footprint")

# group name -> module that registers it (imported when the parser is built; stdlib-only modules).
GROUPS: dict[str, str] = {
    "model": "compress.model_cli",
    "corpus": "bench.corpus_cli",
    "compress": "compress.cli",
    "bench": "bench.bench_cli",
    "report": "reports.cli",
    "run": "bench.main_job",
}


def build_parser(groups: Sequence[str] | None = None, prog: str = "footprint") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Measure and shrink the footprint of wav2vec 2.0 models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="group", metavar="GROUP")
    sub.required = True
    for name in groups or GROUPS:
        try:
            module = importlib.import_module(GROUPS[name])
        except ModuleNotFoundError as exc:  # a group whose package part is not installed/built yet
            if exc.name != GROUPS[name]:
                raise
            log.debug("command group %s unavailable: %s", name, exc)
            continue
        getattr(module, f"register_{name}")(sub)
    return parser


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("codecarbon", "urllib3", "matplotlib", "PIL", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None, groups: Sequence[str] | None = None,
         prog: str = "footprint") -> int:
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
