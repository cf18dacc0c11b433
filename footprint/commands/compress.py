"""``footprint compress``: train the teacher and produce compressed variants (distill, quantize, prune, maxpool).

Only the standard library is imported here; each handler imports its method lazily.
"""
from __future__ import annotations

import argparse
import json

from footprint.commands.methods import add_method_commands
from footprint.commands.option_checks import OneLineParser


def _add_train_teacher(csub: argparse._SubParsersAction) -> None:
    t = csub.add_parser("train-teacher", help="CTC-train the embedded wav2vec 2.0 teacher (resumes after a kill)")
    t.add_argument("--out", required=True, help="run folder: checkpoint.pt, train_log.csv, model/")
    t.add_argument("--corpus", default=None, help="folder containing LibriSpeech/<subset> (default: synthetic)")
    t.add_argument("--hours-train", type=float, default=10.0, help="synthetic train-clean hours")
    t.add_argument("--steps", type=int, default=20000)
    t.add_argument("--time-budget-minutes", type=float, default=None,
                   help="calibrate the step count to this wall-clock budget (fixed at the first run)")
    t.add_argument("--peak-lr", type=float, default=1.5e-3)
    t.add_argument("--batch-seconds", type=float, default=160.0, help="padded audio seconds per batch")
    t.add_argument("--eval-every", type=int, default=500)
    t.add_argument("--checkpoint-minutes", type=float, default=5.0)
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--save-dtype", choices=("float32", "float16"), default="float32")
    t.add_argument("--dev-eval-utterances", type=int, default=150)
    t.add_argument("--init-from", default=None, help="continue from this model directory (new optimizer)")
    t.add_argument("--extend-steps", type=int, default=0,
                   help="on resume, lengthen the finished schedule by N steps (continue a finished run)")
    t.add_argument("--warmup-fraction", type=float, default=0.08)
    t.add_argument("--amp", choices=("auto", "bf16", "none"), default="auto",
                   help="bf16 autocast: auto = on CUDA only; bf16 = also on CPU (faster where AVX512-BF16/AMX exist)")
    t.add_argument("--freeze-feature-encoder", action="store_true",
                   help="keep the conv feature encoder fixed (continuations: about 25%% faster per step on CPU)")
    t.add_argument("--shortest-first", choices=("auto", "yes", "no"), default="auto",
                   help="epoch 0 shortest first: auto = only when training from scratch (no --init-from)")
    t.add_argument("--arch-overrides", default="{}", help="JSON of Wav2Vec2Config overrides (tests, sweeps)")
    from footprint.making import add_energy_options

    add_energy_options(t)

    def _run(args: argparse.Namespace) -> int:
        from footprint.commands.compress_checks import check_train_teacher

        check_train_teacher(args)
        from compress.train_teacher import TeacherTrainConfig, train_teacher

        cfg = TeacherTrainConfig(out_dir=args.out, corpus_root=args.corpus, hours_train=args.hours_train,
                                 steps=args.steps, time_budget_minutes=args.time_budget_minutes,
                                 peak_lr=args.peak_lr, batch_seconds=args.batch_seconds,
                                 eval_every=args.eval_every, checkpoint_minutes=args.checkpoint_minutes,
                                 device=args.device, threads=args.threads, save_dtype=args.save_dtype,
                                 dev_eval_utterances=args.dev_eval_utterances, init_from=args.init_from,
                                 warmup_fraction=args.warmup_fraction, extend_steps=args.extend_steps,
                                 amp=args.amp, arch_overrides=json.loads(args.arch_overrides),
                                 freeze_feature_encoder=args.freeze_feature_encoder,
                                 shortest_first={"auto": None, "yes": True, "no": False}[args.shortest_first])
        from pathlib import Path

        from core.making import read_making
        from footprint.making import metered

        # a continuation carries its initial model's phases; the record lands in RUN/model, and in RUN while
        # the model does not exist yet (an interrupted run)
        carry = read_making(args.init_from) if args.init_from else None
        with metered(Path(args.out) / "model", "train-teacher", args.device, args, carry=carry, resumable=True,
                     resume_dir=args.out):
            final = train_teacher(cfg)
        print(final)
        return 0

    t.set_defaults(func=_run)


def register_compress(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress", help="train the teacher; make compressed variants")
    # every compress command's argparse errors on one line too (its option checks: compress_checks.py)
    csub = p.add_subparsers(dest="compress_cmd", metavar="CMD", parser_class=OneLineParser)
    csub.required = True
    _add_train_teacher(csub)
    add_method_commands(csub)
