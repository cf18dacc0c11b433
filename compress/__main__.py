import sys

from bench.onednn import ensure_cache

ensure_cache()  # before anything imports torch: compilation at build time builds oneDNN kernels too

from footprint.cli import main  # noqa: E402

sys.exit(main(groups=["model", "compress"], prog="python -m compress"))
