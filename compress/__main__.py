import sys

from footprint.cli import main

sys.exit(main(groups=["model", "compress"], prog="python -m compress"))
