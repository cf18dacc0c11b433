"""Mutation score per module from mutmut's results (mutants/<module>.py.meta), and the surviving mutants.

    python tools/mutation_score.py [--survivors] [--fail-under 85]

Score = killed / (every mutant that was run: killed + survived + timeout + suspicious + segfault); a timeout or
a crash counts as not killed, so the score never flatters.  Mutants no test reaches count as not killed too.
The modules are setup.cfg's [mutmut] only_mutate.
"""
from __future__ import annotations

import argparse
import configparser
import json
import logging
import sys
from collections import Counter
from pathlib import Path

log = logging.getLogger("mutation_score")

# mutmut 3's exit codes (mutmut/stats.py): 1 and 3 are a failing test run, 0 a passing one
KILLED = {1: "killed", 3: "killed"}
NAMES = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout", 24: "timeout", -24: "timeout",
         152: "timeout", 255: "timeout", 37: "type check", -9: "segfault", -11: "segfault", None: "not checked"}


def modules(root: Path) -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    return [p for p in cfg.get("mutmut", "only_mutate").split() if p]


def status(code: int | None) -> str:
    return KILLED.get(code) or NAMES.get(code, "suspicious")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."))
    ap.add_argument("--survivors", action="store_true", help="list every mutant not killed")
    ap.add_argument("--fail-under", type=float, default=None, help="exit 1 when the overall score is below this %%")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    total, killed = 0, 0
    left: list[tuple[str, str]] = []
    log.info("%-28s %7s %8s %8s %8s %6s %6s %7s", "module", "killed", "survived", "timeout", "no tests", "other",
             "total", "score")
    for mod in modules(args.root):
        meta = args.root / "mutants" / (mod + ".meta")
        if not meta.exists():
            log.info("%-28s not run (no %s)", mod, meta)
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        c = Counter(status(v) for v in codes.values())
        if c["not checked"]:
            log.info("%-28s %d mutants not checked yet", mod, c["not checked"])
        n = sum(v for k, v in c.items() if k not in ("not checked", "skipped"))
        other = n - c["killed"] - c["survived"] - c["timeout"] - c["no tests"]
        score = 100.0 * c["killed"] / n if n else float("nan")
        log.info("%-28s %7d %8d %8d %8d %6d %6d %6.1f%%", mod, c["killed"], c["survived"], c["timeout"], c["no tests"],
                 other, n, score)
        total, killed = total + n, killed + c["killed"]
        left += sorted((k, status(v)) for k, v in codes.items()
                       if status(v) not in ("killed", "not checked", "skipped"))
    score = 100.0 * killed / total if total else float("nan")
    log.info("%-28s %7d %49d %6.1f%%", "overall", killed, total, score)
    if args.survivors:
        for name, st in left:
            log.info("  %s: %s", name, st)
    if args.fail_under is not None and not score >= args.fail_under:
        log.info("mutation score %.1f %% is below %.1f %%", score, args.fail_under)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
