import sys

from footprint.cli import main

sys.exit(main(groups=["corpus", "bench", "run"], prog="python -m bench"))
