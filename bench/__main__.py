import sys

from bench.onednn import ensure_cache

ensure_cache()  # before anything imports torch (oneDNN reads it once)

from footprint.cli import main  # noqa: E402

sys.exit(main(groups=["corpus", "bench", "run"], prog="python -m bench"))
