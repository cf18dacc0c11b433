"""Interleaved speed probe of recipes against their fp32 base, with the logits' distance from fp32.

    python tools/speed_probe.py --model arch-large-L12 \
        --recipes int8-dynamic,int8-dynamic+compile,ort-int8,bf16-autocast --out docs/runs/.../probe.json

Every variant is built from the same weights (``arch-*``: seeded random weights; otherwise the model spec), fed the
same ``--batch`` x ``--seconds`` of noise, timed in ``--repeats`` rounds whose order alternates (forward, then
reversed), on ``--threads`` threads.  Prints per variant: median model seconds, speed-up over fp32, relative RMS of
the logits vs fp32 (||l - l_fp32|| / ||l_fp32||) and the largest absolute difference.  A probe, not the benchmark:
the runner (``footprint bench run``) measures the real workload; this one answers "is it faster at all, and are
its outputs still the model's" in a minute.  ``--front-end`` also times the conv front end alone in each repeat and
prints where the time goes (front end, and the rest: projection, encoder, head).  Not run in CI.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="arch-large-L12")
    ap.add_argument("--recipes", default="int8-dynamic,int8-dynamic+compile,ort-int8,bf16-autocast")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--front-end", action="store_true", help="also time the conv front end alone in each repeat")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    from compress.variants import load_variant

    specs = {"fp32": args.model}
    # a recipe alone is applied to the embedded teacher; other models (arch-*, students) come first in the chain
    specs.update({r: r if args.model == "embedded" else f"{args.model}+{r}" for r in args.recipes.split(",")
                  if r.strip()})
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(
        (args.batch, int(16000 * args.seconds))).astype(np.float32))
    mask = torch.ones_like(x, dtype=torch.long)
    models, build_s = {}, {}
    for name, spec in specs.items():
        t0 = time.perf_counter()
        models[name] = load_variant(spec, device="cpu")
        build_s[name] = time.perf_counter() - t0
    times: dict[str, list[float]] = {k: [] for k in models}
    front_s: dict[str, list[float]] = {k: [] for k in models}
    logits: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for name, v in models.items():  # warm-up, and the outputs compared
            logits[name] = v.model(x, attention_mask=mask).logits.float()
        for r in range(args.repeats):
            order = list(models.items()) if r % 2 == 0 else list(models.items())[::-1]
            for name, v in order:
                if args.front_end:
                    t0 = time.perf_counter()
                    v.model.wav2vec2.feature_extractor(x)
                    front_s[name].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                v.model(x, attention_mask=mask)
                times[name].append(time.perf_counter() - t0)
    ref = logits["fp32"]
    base = float(np.median(times["fp32"]))
    rows = []
    for name in models:
        d = logits[name] - ref
        rows.append({"variant": name, "median_s": float(np.median(times[name])), "times_s": times[name],
                     "speedup": base / float(np.median(times[name])),
                     "rel_rms_vs_fp32": float(d.norm() / ref.norm()), "max_abs_diff": float(d.abs().max()),
                     "build_s": build_s[name], "runtime": models[name].info.get("runtime", "torch")})
        if args.front_end:
            rows[-1]["front_end_s"] = float(np.median(front_s[name]))
    from core.provenance import collect, now_iso

    prov = collect()
    print(f"{args.model}, batch {args.batch} x {args.seconds:g} s, {args.threads} threads, {args.repeats} "
          f"interleaved repeats ({prov.cpu_model}, torch {prov.torch_version}, commit {prov.git_commit[:8]})")
    split = " front end s | rest s |" if args.front_end else ""
    print(f"| variant | median s | speed-up | rel. RMS vs fp32 | max abs diff | build s |{split}")
    print("|---|---|---|---|---|---|" + "---|---|" * bool(split))
    for r in rows:
        parts = f" {r['front_end_s']:.3f} | {r['median_s'] - r['front_end_s']:.3f} |" if split else ""
        print(f"| {r['variant']} | {r['median_s']:.3f} | x{r['speedup']:.2f} | {r['rel_rms_vs_fp32']:.4f} | "
              f"{r['max_abs_diff']:.3g} | {r['build_s']:.1f} |{parts}")
    if args.out:
        meta = {"model": args.model, "batch": args.batch, "seconds": args.seconds, "threads": args.threads,
                "repeats": args.repeats, "timestamp": now_iso(), **prov.as_dict()}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
