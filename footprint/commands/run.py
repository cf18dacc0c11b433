"""``footprint run``: the main job on the embedded default (or on real data and checkpoints), end to end.

1. the synthetic dev-clean (generated once, then cached), or ``--data`` (a LibriSpeech subset directory);
2. the shipped teacher (or ``--model``: a Hugging Face directory, e.g. from ``footprint model import``);
3. the variants built from it: int8-dynamic, Distiller-style pruning, bf16-autocast where it pays (a CPU with
   native bf16, or a GPU), int8 with a faster front end (bf16 channels-last where bf16 is native, else compiled)
   and bf16 weights with the bf16 channels-last front end (its encoder compiled where a C++ compiler is), and every
   shipped student and structurally pruned model that
   exists (with its chains, ``*_STUDENT_CHAINS``); one line names every chain left out and why (no C++
   compiler, no native bf16, torchao missing, a student not trained);
4. ``bench run`` on CPU (and CUDA when visible): accuracy pass, warm-up, interleaved timed repeats, energy;
   plus architecture-only timing of the paper's large model at a few depths (random weights, timing only);
5. the HTML report, whose path is printed.

The console shows this suite's lines and other libraries' errors; ``RUN_DIR/run.log`` keeps every record of the
job and its child processes (core/console.py).

Sized for a 2-core machine: WER over the whole synthetic dev-clean (300 utterances, 22.8 min of audio), each
utterance transcribed once (the unseen repeats' held-out batches are not run again by the accuracy pass), 2
interleaved repeats per scenario (warm, on a third of the accuracy pass's batches, ``--timed-share``; and unseen
lengths on a held-out half), the tracker's overhead over a short slice of batches (``bench.overhead.MIN_PAIRS``
pairs: a median and its interval), and the large architecture timed on 0.1 % of a dev-clean-shaped workload;
``--limit N`` benchmarks fewer utterances; the run's duration is logged at the end.  A rerun resumes: finished rows
are skipped.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger("footprint.run")

DEFAULT_RECIPES = ("int8-dynamic", "prune-sensitivity")
STUDENT_RECIPES = ("distill-L4", "distill-L2", "distill-L3", "distill-L6", "maxpool-conv4", "prune-structured-50",
                   "prune-structured-25")
# Beyond the paper: chains that compose, each in the run when what it needs is here.  Where bf16 is native
# (AMX/AVX512-BF16 CPUs, GPUs) the front end runs bf16 channels-last (front-end-bf16); elsewhere it is compiled in
# fp32, which needs a C++ compiler.  A student's chain needs that student.  int8 chains run on CPU only (the runner
# skips them on a GPU, saying why).  A tuple lists alternatives, fastest first (docs/results-cpu.md has the
# figures): the first that can run here joins.  The statically calibrated int8 form is left out: it calibrates on
# a training split, which a user's own teacher and data may not have.
BF16_TEACHER_CHAINS = (("front-end-bf16+int8-inductor-bf16", "int8-dynamic+front-end-bf16"),
                       ("bf16+front-end-bf16+compile-encoder", "bf16+front-end-bf16"))
FP32_TEACHER_CHAINS = ("int8-dynamic+compile",)
BF16_STUDENT_CHAINS = {"distill-L4": (("distill-L4+bf16+front-end-bf16+compile-encoder",
                                       "distill-L4+bf16+front-end-bf16"),)}
FP32_STUDENT_CHAINS = {"distill-L4": ("distill-L4+int8-dynamic",)}  # the pruned models' chains: no gain over eager


def register_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job: corpus -> variants -> benchmark -> HTML report")
    p.add_argument("--model", default="embedded", help="teacher: 'embedded' or a Hugging Face model directory")
    p.add_argument("--data", default="embedded:dev-clean", help="'embedded:dev-clean' or a LibriSpeech subset dir")
    from footprint.commands.bench import add_calibration_argument, add_fresh_argument, add_timed_share_argument

    add_calibration_argument(p)
    add_fresh_argument(p)
    add_timed_share_argument(p, TIMED_SHARE)
    p.add_argument("--out", default="runs/main", help="RUN_DIR (results, report)")
    p.add_argument("--device", default=None, help="cpu, cuda or cpu,cuda (default: cpu, plus cuda if visible)")
    p.add_argument("--limit", type=int, default=0, help="benchmark only the first N utterances (default 0 = all)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-arch", action="store_true", help="skip the architecture-only timing of the large model")
    p.add_argument("--arch-layers", default="24,12,6", help="depths of the random-weight large model to time")
    p.add_argument("--arch-fraction", type=float, default=0.001,
                   help="fraction of the dev-clean-shaped workload timed per depth on CPU")
    p.add_argument("--country", default=None, help="ISO code for carbon intensity (default: the world average)")
    p.add_argument("--carbon-intensity", type=float, default=None, metavar="G_PER_KWH")
    p.add_argument("--idle-baseline-s", type=float, default=None, metavar="S",
                   help="idle power measured first (default: 10 s with a hardware counter, none for estimates)")
    p.set_defaults(func=main_job)


# Each warm repeat times a third of the accuracy pass's batches (100 of the 300 utterances, every third batch by
# length), as each unseen repeat times 75: timing every batch made the timed repeats the main job's largest phase on
# two cores, and every variant times the same batches, so the ratios compare like with like.
TIMED_SHARE = 1 / 3
STUDENTS_DIR_HINT = "compress/embedded/students"
RUN_LOG = "run.log"  # in RUN_DIR: every record of the job and its child processes (the console shows ours)


def available_students() -> tuple[list[str], list[str]]:
    from compress.methods.students import default_students_dir

    root = default_students_dir()
    have = [r for r in STUDENT_RECIPES if (root / r / "config.json").exists() or (root / r / "variant.json").exists()]
    return have, [r for r in STUDENT_RECIPES if r not in have]


NO_BF16 = "no native bf16 on this CPU (AVX512-BF16/AMX): emulated bf16 is slower than fp32"
NOT_TRAINED = (f"not trained here (in {STUDENTS_DIR_HINT} or $W2V_FOOTPRINT_STUDENTS): 'footprint compress "
               "distill' or 'prune-structured', see compress/embedded/students/README.md")


def _runnable(chains: tuple, left_out: list[tuple[str, str]] | None = None) -> list[str]:
    """The chains that can run here; of a tuple of alternatives, the first.  What can run is the registry's
    answer (a method's ``available``: compile needs a C++ compiler, int8-inductor torchao too); each chain
    passed over is added to ``left_out`` with the registry's reason (an alternative that ran in its place
    included: the best chain missing is worth a line)."""
    from compress.methods.registry import unavailable_reason
    from core.errors import FootprintError

    picked = []
    for entry in chains:
        for chain in entry if isinstance(entry, tuple) else (entry,):
            try:
                why = unavailable_reason(chain)
            except FootprintError as exc:  # a chain this version does not know
                why = str(exc)
            if why is None:
                picked.append(chain)
                break
            if left_out is not None:
                left_out.append((chain, why))
    return picked


def _first(entry: str | tuple) -> str:
    return entry[0] if isinstance(entry, tuple) else entry


def left_out_line(left_out: list[tuple[str, str]]) -> str:
    """One line: the chains left out, grouped by reason, in the order met."""
    by: dict[str, list[str]] = {}
    for chain, why in left_out:
        if chain not in by.setdefault(why, []):
            by[why].append(chain)
    return "left out of this run: " + "; ".join(f"{', '.join(chains)} ({why})" for why, chains in by.items())


def main_job_models(model: str, devices: list[str]) -> list[str]:
    """The variants of the main job: the teacher, the paper's recipes, bf16 where it pays, the teacher's chains,
    and (on the embedded teacher) every shipped student with its chains; what it leaves out, and why, in one
    warning line."""
    from compress.methods.quantize import cpu_has_native_bf16
    from core.device import Device

    models = [model, *DEFAULT_RECIPES]
    left_out: list[tuple[str, str]] = []
    # elsewhere bf16 is emulated: slower than fp32, not worth a row
    bf16 = any(Device.parse(d).is_cuda for d in devices) or cpu_has_native_bf16()
    if bf16:
        models.append("bf16-autocast")
    else:
        left_out += [(c, NO_BF16) for c in ("bf16-autocast", *map(_first, BF16_TEACHER_CHAINS))]
    models += _runnable(BF16_TEACHER_CHAINS if bf16 else FP32_TEACHER_CHAINS, left_out)
    if model == "embedded":
        have, missing = available_students()
        for s in have:
            models += [s, *_runnable((BF16_STUDENT_CHAINS if bf16 else FP32_STUDENT_CHAINS).get(s, ()), left_out)]
            if not bf16:
                left_out += [(_first(c), NO_BF16) for c in BF16_STUDENT_CHAINS.get(s, ())]
        left_out += [(s, NOT_TRAINED) for s in missing]
    else:
        log.info("recipes are applied to %s", model)
    if left_out:
        log.warning("%s", left_out_line(left_out))
    return models


def _record_job_phases(out: str, before_s: float, report_s: float, total_s: float) -> None:
    """The main job's own phases beside the runner's (meta.json ``phases_s``): data and variant list, report."""
    from core.results import read_meta, write_meta

    meta = read_meta(out)
    if meta:
        meta["job_phases_s"] = {"data and variants": round(before_s, 1), "report": round(report_s, 1),
                                "total": round(total_s, 1)}
        write_meta(out, meta)
    log.info("main job phases: before the runner %.0f s, report %.0f s", before_s, report_s)


def main_job(args: argparse.Namespace) -> int:
    from core import console

    with console.run_log(Path(args.out) / RUN_LOG):  # everything, third-party warnings included
        return _main_job(args)


def _main_job(args: argparse.Namespace) -> int:
    import torch

    from core.data import resolve_data
    from bench.overhead import MIN_PAIRS
    from bench.runner import RunConfig, run_benchmark
    from footprint.commands.bench import compiled_specs
    from reports.html import write_report

    t0 = time.perf_counter()
    devices = args.device.split(",") if args.device else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    log.info("step 1/4: data %s", args.data)
    resolve_data(args.data)  # generates and caches the synthetic corpus on first use
    models = main_job_models(args.model, devices)
    layers = [int(x) for x in args.arch_layers.split(",") if x.strip()]
    cfg = RunConfig(out=args.out, models=models, data=args.data, devices=devices, repeats=args.repeats,
                    threads=args.threads, limit=args.limit or None, country=args.country,
                    carbon_intensity=args.carbon_intensity, arch=[] if args.no_arch else ["large"],
                    layers=layers, arch_fraction=args.arch_fraction, overhead_pairs=MIN_PAIRS,
                    scenarios=["batched", "unseen"],  # warm (a batch job) and lengths never seen (a server)
                    timed_share=getattr(args, "timed_share", TIMED_SHARE),
                    idle_baseline_s=getattr(args, "idle_baseline_s", None), fresh=getattr(args, "fresh", False),
                    side_builds=compiled_specs(models))
    if args.model != "embedded":
        import os

        from compress.variants import TEACHER_ENV

        os.environ[TEACHER_ENV] = args.model  # recipes are built from the user's model
    log.info("step 2-3/4: benchmark %s on %s", ", ".join(models), ",".join(devices))
    from footprint.commands.bench import variant_loader

    t_bench = time.perf_counter()
    run_benchmark(cfg, variant_loader(args, args.data))
    log.info("step 4/4: report")
    t_report = time.perf_counter()
    out = write_report(args.out, f"{args.out}/report.html")
    _record_job_phases(args.out, t_bench - t0, time.perf_counter() - t_report, time.perf_counter() - t0)
    log.info("main job done in %.0f s", time.perf_counter() - t0)
    print(out)
    return 0
