"""The deployer's measurement: each recipe loaded in a fresh process, warmed up, then run on audio never seen.

    python tools/deploy_probe.py --recipes int8-dynamic,ov-int8 --utterances 100 --json probe.json

For every recipe and the teacher (``--teacher``, default ``embedded``), in alternating order over ``--repeats``
rounds (teacher first, then reversed), a FRESH python process does what a deployer would:
``load_variant(spec)`` + ``Transcriber(variant.model, do_normalize=..., dtype=..., batch_size=...)`` (timed: load +
build seconds, imports apart), transcribes ``--warmup`` utterances of ``--warmup-data`` (the suite's dev-clean by
default), then transcribes a synthetic dev-clean generated with ``--seed`` (a seed the suite never uses, so
utterance lengths no compiled graph or kernel cache has met), timing the model alone and the end-to-end path
(inputs + model + decoding; the audio is read before).  Prints per recipe: load+build s, model s per pass, x over
the teacher (model, e2e), WER, and the break-even audio hours, (build_variant - build_teacher) / e2e seconds the
variant saves per audio hour: how much audio it must transcribe before its longer build has paid for itself.
A probe, not the benchmark (no energy, no contention checks); not run in CI.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("deploy_probe")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEED = 4099  # the suite's corpora use seed 0; any other seed gives other speakers, sentences and lengths


def unseen_corpus(utterances: int, seed: int) -> Path:
    """The synthetic dev-clean of ``seed`` (generated once, cached): its LibriSpeech/dev-clean directory."""
    from core.data.synth.corpus import SynthConfig, ensure_corpus

    root = ensure_corpus(SynthConfig(dev_utterances=utterances, seed=seed), ["dev-clean"], progress=False)
    return Path(root) / "LibriSpeech" / "dev-clean"


# ----------------------------------------------------------------------------------------------- child
def child(args: argparse.Namespace) -> dict[str, Any]:
    """One deployer: load, build, warm up, transcribe the unseen corpus; returns the measurements."""
    t0 = time.perf_counter()
    import torch

    from compress.variants import import_loader_dependencies, load_variant
    from core.data import resolve_data
    from core.data.librispeech import load_audio, read_subset
    from core.inference import Transcriber
    from core.scoring import score

    if args.threads:
        torch.set_num_threads(args.threads)
    import_loader_dependencies()  # before the clock: a build, not the imports every recipe shares
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    variant = load_variant(args.child, device="cpu")
    tr = Transcriber(variant.model, do_normalize=variant.do_normalize, dtype=variant.dtype,
                     batch_size=args.batch_size)
    build_s = time.perf_counter() - t0
    warm = read_subset(resolve_data(args.warmup_data)).subset_of(args.warmup)
    t0 = time.perf_counter()
    tr.transcribe([load_audio(u) for u in warm.utterances])
    warmup_s = time.perf_counter() - t0
    manifest = read_subset(Path(args.corpus)).subset_of(None)
    audios = [load_audio(u) for u in manifest.utterances]
    hyps: list[str] = [""] * len(audios)
    model_s = 0.0
    t_e2e = time.perf_counter()
    for batch in tr.plan([len(a) / 16000 for a in audios]):
        inputs = tr.make_inputs([audios[i] for i in batch])
        t0 = time.perf_counter()
        logits = tr.forward(inputs)
        model_s += time.perf_counter() - t0
        for i, text in zip(batch, tr.decode(logits, inputs)):
            hyps[i] = text
    e2e_s = time.perf_counter() - t_e2e
    sc = score([u.transcript for u in manifest.utterances], hyps)
    return {"spec": args.child, "import_s": import_s, "build_s": build_s, "warmup_s": warmup_s, "model_s": model_s,
            "e2e_s": e2e_s, "audio_s": sum(len(a) for a in audios) / 16000, "n_utts": len(audios), "wer": sc.wer,
            "threads": torch.get_num_threads(), "runtime": variant.info.get("runtime") or "torch"}


def run_child(spec: str, corpus: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", spec, "--corpus", str(corpus),
           "--warmup", str(args.warmup), "--warmup-data", args.warmup_data, "--batch-size", str(args.batch_size)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log.info("fresh process: %s", spec)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"deploy_probe: {spec} failed in its process: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- parent
def summarise(runs: dict[str, list[dict[str, Any]]], teacher: str) -> list[dict[str, Any]]:
    def med(spec: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[spec])

    t_build, t_model, t_e2e = med(teacher, "build_s"), med(teacher, "model_s"), med(teacher, "e2e_s")
    rows = []
    for spec, rs in runs.items():
        audio_h = rs[0]["audio_s"] / 3600
        saved_per_h = (t_e2e - med(spec, "e2e_s")) / audio_h  # e2e seconds saved per audio hour
        extra = med(spec, "build_s") - t_build
        if spec == teacher:
            breakeven = 0.0
        elif extra <= 0:
            breakeven = 0.0 if saved_per_h >= 0 else math.inf  # builds faster: pays from the first utterance
        else:
            breakeven = extra / saved_per_h if saved_per_h > 0 else math.inf
        rows.append({"recipe": spec, "runtime": rs[0]["runtime"], "build_s": med(spec, "build_s"),
                     "warmup_s": med(spec, "warmup_s"), "model_s": med(spec, "model_s"), "e2e_s": med(spec, "e2e_s"),
                     "x_model": t_model / med(spec, "model_s"), "x_e2e": t_e2e / med(spec, "e2e_s"),
                     "wer": rs[0]["wer"], "breakeven_audio_h": breakeven, "repeats": len(rs),
                     "build_s_all": [r["build_s"] for r in rs], "model_s_all": [r["model_s"] for r in rs]})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'recipe':<32} {'load+build s':>12} {'model s':>9} {'x model':>8} {'x e2e':>7} {'WER %':>7} "
             f"{'break-even h':>13}"]
    for r in rows:
        be = "never" if math.isinf(r["breakeven_audio_h"]) else f"{r['breakeven_audio_h']:.3f}"
        lines.append(f"{r['recipe']:<32} {r['build_s']:>12.2f} {r['model_s']:>9.2f} {r['x_model']:>8.2f} "
                     f"{r['x_e2e']:>7.2f} {100 * r['wer']:>7.2f} {be:>13}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default="int8-dynamic", help="comma-separated model specs to compare")
    ap.add_argument("--teacher", default="embedded", help="the spec the others are compared with")
    ap.add_argument("--utterances", type=int, default=100, help="utterances of the unseen synthetic dev-clean")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="its seed (the suite's corpora use 0)")
    ap.add_argument("--warmup", type=int, default=8, help="warm-up utterances before the timed pass")
    ap.add_argument("--warmup-data", default="embedded:dev-clean")
    ap.add_argument("--repeats", type=int, default=2, help="rounds, the order reversed every other round")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    ap.add_argument("--json", default=None, help="also write the per-process results and the summary here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.child:
        logging.disable(logging.WARNING)  # stdout carries one JSON line; the model's own logs are not wanted
        print(json.dumps(child(args)))
        return 0
    if args.seed == 0:
        raise SystemExit("deploy_probe: --seed 0 is the suite's own corpus; pick another seed")
    specs = [args.teacher] + [s.strip() for s in args.recipes.split(",") if s.strip() and s.strip() != args.teacher]
    corpus = unseen_corpus(args.utterances, args.seed)
    log.info("unseen corpus: %s (seed %d)", corpus, args.seed)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in specs}
    for r in range(args.repeats):
        for spec in specs if r % 2 == 0 else specs[::-1]:
            res = run_child(spec, corpus, args)
            log.info("%s: load+build %.2f s, warm-up %.2f s, model %.2f s, e2e %.2f s, WER %.2f %%", spec,
                     res["build_s"], res["warmup_s"], res["model_s"], res["e2e_s"], 100 * res["wer"])
            runs[spec].append(res)
    rows = summarise(runs, args.teacher)
    print(table(rows))
    if args.json:
        doc = {"args": {k: v for k, v in vars(args).items() if k not in ("child", "corpus")},
               "corpus": str(corpus), "runs": runs, "summary": rows}
        Path(args.json).write_text(json.dumps(doc, indent=1, default=str))
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
