import sys

from bench.cli import main

sys.exit(main(groups=["model", "compress"], prog="python -m compress"))
