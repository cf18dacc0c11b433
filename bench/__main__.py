import sys

from bench.cli import main

sys.exit(main(groups=["corpus", "bench", "run"], prog="python -m bench"))
