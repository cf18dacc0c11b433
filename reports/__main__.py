"""``python -m reports RUN_DIR [options]`` (or ``python -m reports report RUN_DIR ...``): the same as
``footprint report``."""
import sys

from footprint.cli import main

argv = sys.argv[1:]
# Let the group name be implicit: the report group is the only one here.
if not argv or argv[0] not in ("report", "-h", "--help", "-v", "--verbose"):
    argv = ["report", *argv]
elif argv[0] in ("-v", "--verbose") and (len(argv) < 2 or argv[1] != "report"):
    argv = [argv[0], "report", *argv[1:]]
sys.exit(main(argv, groups=["report"], prog="python -m reports"))
