"""WER of int8 recipes with 7-bit and with full 8-bit ranges, on this CPU (compress/methods/README.md, "int8 on x86
CPUs without VNNI or AMX").  Each mode runs in its own process so that nothing built in one is reused by the other:

    python tools/int8_ranges_wer.py --ranges auto   # what the suite chooses here (7-bit without VNNI/AMX)
    python tools/int8_ranges_wer.py --ranges full   # full 8-bit ranges forced
"""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger("int8_ranges_wer")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranges", choices=("auto", "full"), default="auto")
    p.add_argument("--recipes", default="embedded,ort-int8,ov-int8,int8-inductor")
    p.add_argument("--data", default="embedded:dev-clean")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from compress.methods import quantize

    if args.ranges == "full":  # every recipe resolves its unset reduce_range through this check
        quantize.cpu_has_int8_dot_product = lambda: True
    from bench.evaluate import evaluate_model
    from compress.variants import load_variant

    log.info("int8 dot product on this CPU: %s; ranges: %s", quantize.cpu_has_int8_dot_product(), args.ranges)
    for recipe in args.recipes.split(","):  # each result is logged as one line by evaluate_model
        evaluate_model(recipe, [args.data], load_variant, threads=args.threads, progress=False)


if __name__ == "__main__":
    main()
