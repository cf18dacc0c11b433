import sys

from bench.cli import main

sys.exit(main(groups=["report"], prog="python -m reports"))
