"""``footprint compress distill | prune-structured | quantize | prune | maxpool | apply | recipes``.

Standard library only at module level (the CLI is built before any command runs); handlers import lazily.
Each writes a variant directory (Hugging Face files + ``variant.json``) and prints its path as the last line.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _model_arg(p: argparse.ArgumentParser, help_: str = "model spec: embedded, a model directory, or a recipe"
               ) -> None:
    p.add_argument("--model", default="embedded", help=help_ + " (default: embedded)")
    p.add_argument("--out", required=True, help="output variant directory")
    _energy_args(p)


def _energy_args(p: argparse.ArgumentParser) -> None:
    from footprint.making import add_energy_options

    add_energy_options(p)


def _load_source(spec: str) -> Any:
    from compress.variants import load_variant

    return load_variant(spec, device="cpu")


def _source_stages(v: Any) -> list[dict[str, Any]]:
    stages = list(v.record.get("stages") or [])
    return [s for s in stages if s.get("name") != "baseline"]


def _recipe_of(stages: list[dict[str, Any]]) -> str:
    return "+".join(s["name"] for s in stages) or "baseline"


class LazyChoices:
    """argparse ``choices`` read from the method registry only when argparse looks at them (parsing the option,
    or help), so building the CLI imports no method module and no torch.  Give the option a ``metavar``:
    without one argparse lists the choices while building the parser."""

    def __init__(self, command: str) -> None:
        self.command = command

    def _names(self) -> list[str]:
        from compress.methods.registry import command_methods

        return command_methods(self.command)

    def __contains__(self, item: object) -> bool:
        return item in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def _save(model: Any, v: Any, out: str, stage_name: str, stage_cfg: Any, sparse: bool = False,
          float_model: Any = None, reapply: bool = False, trained: bool | None = None) -> dict[str, Any]:
    from compress.methods.registry import config_dict
    from compress.methods.storage import save_variant, source_info

    stage = {"name": stage_name, "config": config_dict(stage_cfg)}
    stages = _source_stages(v) + [stage]
    src = source_info(v.path or v.name, Path(v.path)) if v.path else {"spec": v.name,
                                                                       "hash": v.record.get("source_hash")}
    return save_variant(model, out, recipe=_recipe_of(stages), stages=stages, do_normalize=v.do_normalize,
                        source=src, sparse=sparse, float_model=float_model,
                        reapply_on_load=[stage] if reapply else None,
                        trained=bool(v.info.get("trained", True)) if trained is None else trained)


def _summary(rec: dict[str, Any], out: str) -> str:
    return (f"{out}  [{rec['recipe']}: {rec['params']:,} params, {rec['size_mb']:.2f} MB fp32, "
            f"{rec['size_on_disk_mb']:.2f} MB on disk, {rec['memory_mb']:.2f} MB in memory, "
            f"sparsity {100 * rec['sparsity']:.1f}%, {rec['conv_layers']} conv + {rec['transformer_layers']} "
            f"transformer layers]")


# ----------------------------------------------------------------------------------------------- distill
def _add_training_args(p: argparse.ArgumentParser) -> None:
    """The distillation options (``distill``, and the recovery of ``prune-structured``)."""
    p.add_argument("--model", default="embedded", help="the teacher (default: embedded)")
    p.add_argument("--out", required=True, help="output directory: variant files, train_log.csv; "
                                                "checkpoint and cache in OUT/.work until finished")
    p.add_argument("--data", default="embedded:train-clean",
                   help="training subset: a LibriSpeech subset dir or embedded:train-clean (default)")
    p.add_argument("--hours-train", type=float, default=10.0, help="synthetic train-clean size (embedded only)")
    p.add_argument("--val-data", default=None, help="validation subset (default: speakers held out of --data; "
                                                    "never the reported dev-clean)")
    p.add_argument("--val-utterances", type=int, default=200)
    p.add_argument("--data-fraction", type=float, default=1.0, help="share of the training audio (Figure 2)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=2.5e-5, help="peak learning rate (paper: 2.5e-5)")
    p.add_argument("--warmup-epochs", type=float, default=2.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--feature-penalty", type=float, default=1.0, help="weight of the conv feature L2 penalty")
    p.add_argument("--ctc-weight", type=float, default=0.0, help="weight of a CTC loss on labels (paper: 0)")
    p.add_argument("--batch-seconds", type=float, default=160.0, help="padded audio seconds per batch per rank")
    p.add_argument("--grad-clip", type=float, default=5.0, help="gradient-norm clip (0: off)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "none"),
                   help="autocast: auto = bf16 (or fp16) on GPU, off on CPU; "
                        "bf16 = also on CPU (teacher pass included)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: cores / ranks)")
    p.add_argument("--no-teacher-cache", action="store_true",
                   help="run the teacher every step instead of caching its logits once")
    p.add_argument("--cache-dir", default=None,
                   help="teacher-logit cache folder; share it between students of the same teacher")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--checkpoint-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None,
                   help="wall-clock budget of the training loop (not data loading or the teacher pass): "
                        "the step count is fitted to it after a few steps")
    p.add_argument("--max-steps", type=int, default=None, help="cap the run at this many optimizer steps")
    p.add_argument("--save-dtype", choices=("float32", "float16"), default="float32",
                   help="storage dtype of the saved weights (float16 halves the shipped size)")
    p.add_argument("--layerdrop", type=float, default=None, help="override the teacher config's layerdrop")
    p.add_argument("--mask-time-prob", type=float, default=None, help="override the config's time masking")
    p.add_argument("--freeze-feature-encoder", action="store_true",
                   help="do not train the conv front end (faster; the feature penalty then has no effect)")
    p.add_argument("--keep-work", action="store_true", help="keep OUT/.work (checkpoint, cache) at the end")
    _energy_args(p)


def _distill_config(args: argparse.Namespace, **kw: Any) -> Any:
    from compress.methods.distill import DistillConfig

    return DistillConfig(out_dir=args.out, teacher=args.model, data=args.data, hours_train=args.hours_train,
                         val_data=args.val_data, val_utterances=args.val_utterances,
                         data_fraction=args.data_fraction, epochs=args.epochs, lr=args.lr,
                         warmup_epochs=args.warmup_epochs, temperature=args.temperature,
                         feature_penalty_weight=args.feature_penalty, ctc_weight=args.ctc_weight,
                         batch_seconds=args.batch_seconds, grad_clip=args.grad_clip, seed=args.seed,
                         device=args.device, amp=args.amp, threads=args.threads,
                         teacher_cache=not args.no_teacher_cache, cache_dir=args.cache_dir,
                         checkpoint_minutes=args.checkpoint_minutes, checkpoint_steps=args.checkpoint_steps,
                         max_minutes=args.max_minutes, max_steps=args.max_steps, save_dtype=args.save_dtype,
                         layerdrop=args.layerdrop, mask_time_prob=args.mask_time_prob,
                         freeze_feature_encoder=args.freeze_feature_encoder, keep_work=args.keep_work, **kw)


def _print_training_result(res: Any) -> None:
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        wer = "n/a" if res.val_wer is None else f"{100 * res.val_wer:.2f}%"
        print(f"{res.out_dir}  [{res.steps} steps, {res.epochs_done:.2f} epochs, validation WER {wer}"
              f"{', already trained' if res.already_done else ''}]")


def _add_distill(csub: argparse._SubParsersAction) -> None:
    p = csub.add_parser("distill", help="train a student with fewer layers by knowledge distillation "
                                        "(resumes after a kill; runs under torchrun)")
    _add_training_args(p)
    p.add_argument("--layers", type=int, default=None, help="student transformer layers (default: the teacher's)")
    p.add_argument("--init", choices=("alternate", "last"), default="alternate",
                   help="alternate: every k-th teacher layer (DistilBERT); last: the last N layers")
    p.add_argument("--student-arch", default="standard", help="standard | maxpool-conv4 (Table 3 front end)")
    p.add_argument("--init-from", default=None, help="start from this variant directory instead of the teacher")

    def _run(args: argparse.Namespace) -> int:
        from footprint.commands.compress_checks import check_distill

        check_distill(args)
        from compress.methods.distill import distill
        from footprint.making import inherited, metered

        # continued training (--init-from a student) carries that student's phases; a resumed run, its own
        with metered(args.out, "distill", args.device, args, carry=inherited(args.init_from), resumable=True) as mk:
            res = distill(_distill_config(args, layers=args.layers, init=args.init, student_arch=args.student_arch,
                                          init_from=args.init_from))
            mk.skip = res.already_done
        _print_training_result(res)
        return 0

    p.set_defaults(func=_run)


def _add_prune_structured(csub: argparse._SubParsersAction) -> None:
    p = csub.add_parser("prune-structured", help="remove heads, feed-forward neurons and front-end conv channels, "
                                                 "then recover by distillation (resumes after a kill)")
    _add_training_args(p)
    p.add_argument("--flops-keep", type=float, default=0.5, help="share of the transformer FLOPs to keep")
    p.add_argument("--conv-keep", type=float, default=0.5,
                   help="share of the channels kept in --conv-layers (1: leave the front end alone)")
    p.add_argument("--conv-layers", default="0,1,2", help="front-end conv layers to thin (comma list)")
    p.add_argument("--min-heads", type=int, default=1, help="heads kept at least, per layer")
    p.add_argument("--min-ffn", type=int, default=16, help="feed-forward neurons kept at least, per layer")
    p.add_argument("--calibration-utterances", type=int, default=64,
                   help="training utterances the importance is measured on")

    def _run(args: argparse.Namespace) -> int:
        from footprint.commands.compress_checks import check_prune_structured

        check_prune_structured(args)
        from compress.methods.prune_structured import StructuredPruneConfig
        from compress.methods.prune_structured.run import prune_structured

        conv_layers = tuple(int(x) for x in args.conv_layers.split(",") if x.strip())
        pcfg = StructuredPruneConfig(flops_keep=args.flops_keep, conv_keep=args.conv_keep, conv_layers=conv_layers,
                                     min_heads=args.min_heads, min_ffn=args.min_ffn,
                                     calibration_utterances=args.calibration_utterances)
        from footprint.making import metered

        with metered(args.out, "prune-structured (pruning + recovery)", args.device, args, resumable=True) as mk:
            res = prune_structured(pcfg, _distill_config(args))
            mk.skip = res.already_done
        _print_training_result(res)
        return 0

    p.set_defaults(func=_run)


def _add_quantize(csub: argparse._SubParsersAction) -> None:
    p = csub.add_parser("quantize", help="int8 dynamic/static (CPU), fp16/bf16 (GPU), torchao int8 weight-only")
    _model_arg(p)
    p.add_argument("--method", default="int8-dynamic", choices=LazyChoices("quantize"), metavar="METHOD",
                   help="%(choices)s (default: %(default)s)")
    # Each option is a config field; unset (None) options keep the method's own default, and a method whose
    # config lacks the field ignores it.
    p.add_argument("--per-channel", action="store_true", default=None,
                   help="int8: one scale per output row (int8-static always uses it)")
    p.add_argument("--calibration-data", default=None,
                   help="int8-static: subset to calibrate on, never the reported test set "
                        "(default: embedded:train-clean)")
    p.add_argument("--calibration-utterances", type=int, default=None, help="int8-static (default: 16)")
    p.add_argument("--observer", choices=("histogram", "minmax"), default=None,
                   help="int8-static (default: histogram)")

    def _run(args: argparse.Namespace) -> int:
        import copy

        from footprint.commands.compress_checks import check_quantize

        check_quantize(args)
        from compress.methods.registry import fill_context, resolve_stage

        method, cfg = resolve_stage(args.method)
        options = {"per_channel": args.per_channel, "calibration_data": args.calibration_data,
                   "calibration_utterances": args.calibration_utterances, "observer": args.observer}
        for k, val in options.items():
            if val is not None and hasattr(cfg, k):
                setattr(cfg, k, val)
        from footprint.making import inherited, metered

        with metered(args.out, f"quantize:{args.method}", "cpu", args, carry=inherited(args.model)):
            v = _load_source(args.model)
            fill_context(cfg, do_normalize=v.do_normalize)
            float_model = copy.deepcopy(v.model) if method.reapply_on_load else None
            model = method.apply(v.model, cfg)
            rec = _save(model, v, args.out, args.method, cfg, float_model=float_model,
                        reapply=method.reapply_on_load)
        print(_summary(rec, args.out))
        return 0

    p.set_defaults(func=_run)


# ----------------------------------------------------------------------------------------------- prune
def _add_prune(csub: argparse._SubParsersAction) -> None:
    p = csub.add_parser("prune", help="Distiller sensitivity pruning (threshold = sensitivity x std per layer)")
    _model_arg(p)
    p.add_argument("--conv-sensitivity", type=float, default=0.1, help="conv layers (paper: 0.1)")
    p.add_argument("--schedule", default="3:0.3,17:0.4",
                   help="24-layer transformer schedule FIRST:SENS,... mapped proportionally to other depths; "
                        "layers before the first entry stay dense (paper: 3:0.3,17:0.4)")
    p.add_argument("--no-pos-conv", action="store_true", help="leave the positional conv dense")
    p.add_argument("--sparse-storage", action="store_true",
                   help="store pruned tensors as bitmask + non-zeros, so the size on disk reflects sparsity")
    p.add_argument("--overrides", default="{}", help='JSON {"module name": sensitivity} for exact control')

    def _run(args: argparse.Namespace) -> int:
        from footprint.commands.compress_checks import check_prune, check_prune_overrides

        check_prune(args)
        from compress.methods.prune import PruneConfig, apply_prune

        schedule = tuple((int(a), float(b)) for a, b in (item.split(":") for item in args.schedule.split(",")
                                                         if item.strip()))
        cfg = PruneConfig(conv_sensitivity=args.conv_sensitivity, transformer_schedule=schedule,
                          prune_pos_conv=not args.no_pos_conv, sparse_storage=args.sparse_storage,
                          overrides=json.loads(args.overrides))
        from footprint.making import inherited, metered

        with metered(args.out, "prune-sensitivity", "cpu", args, carry=inherited(args.model)):
            v = _load_source(args.model)
            check_prune_overrides(args, v.model)
            model = apply_prune(v.model, cfg)
            for name, s in model.pruning_report["per_layer"].items():
                log.info("  %-60s sensitivity %.2f sparsity %5.1f%%", name,
                         model.pruning_report["sensitivity"][name], 100 * s)
            rec = _save(model, v, args.out, "prune-sensitivity", cfg, sparse=args.sparse_storage)
        print(_summary(rec, args.out) + f"  pruned tensors {100 * rec['pruned_tensors_sparsity']:.1f}% zero")
        return 0

    p.set_defaults(func=_run)


# ----------------------------------------------------------------------------------------------- maxpool
def _add_maxpool(csub: argparse._SubParsersAction) -> None:
    p = csub.add_parser("maxpool", help="replace the last conv layers by max-pooling (Table 3); untrained: "
                                        "train it with distill --init-from OUT")
    _model_arg(p)
    p.add_argument("--conv-layers", type=int, default=4, help="conv layers kept (the others become max-pooling)")

    def _run(args: argparse.Namespace) -> int:
        from footprint.commands.compress_checks import check_maxpool

        check_maxpool(args)
        from compress.methods.maxpool import MaxPoolConfig, apply_maxpool

        from footprint.making import inherited, metered

        with metered(args.out, f"maxpool-conv{args.conv_layers}", "cpu", args, carry=inherited(args.model)):
            v = _load_source(args.model)
            cfg = MaxPoolConfig(conv_layers=args.conv_layers)
            model = apply_maxpool(v.model, cfg)
            rec = _save(model, v, args.out, f"maxpool-conv{args.conv_layers}-untrained", cfg, trained=False)
        flops = rec.get("flops_per_s")
        extra = (f"  {flops / 1e9:.3f} GFLOPs/s of audio (conv {rec['conv_flops_per_s'] / 1e9:.3f})"
                 if flops else "")
        print(_summary(rec, args.out) + extra)
        log.info("untrained: train it with footprint compress distill --model %s --init-from %s --out DIR",
                 args.model, args.out)
        return 0

    p.set_defaults(func=_run)


# ----------------------------------------------------------------------------------------------- apply / recipes
def _add_apply(csub: argparse._SubParsersAction) -> None:
    p = csub.add_parser("apply", help="build a recipe (e.g. distill-L4+int8-dynamic) and save it")
    p.add_argument("--recipe", required=True)
    p.add_argument("--teacher", default="embedded", help="model the recipe starts from (default: embedded)")
    p.add_argument("--students-dir", default=None, help="where distill-L{n} students live")
    p.add_argument("--out", required=True)
    p.add_argument("--sparse-storage", action="store_true")
    _energy_args(p)

    def _run(args: argparse.Namespace) -> int:
        from footprint.commands.compress_checks import check_apply

        check_apply(args)
        from core.errors import FootprintError
        from compress.methods.registry import parse_recipe
        from compress.methods.storage import save_variant
        from compress.variants import build_variant

        stages = parse_recipe(args.recipe)
        if any(s.method.runtime_only for s in stages):
            raise FootprintError(f"{args.recipe}: {', '.join(s.name for s in stages if s.method.runtime_only)} "
                                 "changes how the model runs, not its weights: nothing to save; name the recipe "
                                 "in footprint bench run instead")
        from footprint.making import inherited, metered

        with metered(args.out, f"apply:{args.recipe}", "cpu", args) as mk:
            v, stages, base = build_variant(args.recipe, teacher=args.teacher, students_dir=args.students_dir)
            if any(s.method.reapply_on_load for s in stages):
                raise FootprintError(f"{args.recipe}: save torchao variants with footprint compress quantize")
            mk.carry = inherited(base.path) if base is not None else None  # a trained student's phases
            rec = save_variant(v.model, args.out, recipe=args.recipe, stages=[s.as_record() for s in stages],
                               do_normalize=v.do_normalize,
                               source={"spec": v.record.get("source_model"), "hash": v.record.get("source_hash")},
                               sparse=args.sparse_storage, trained=v.info.get("trained", True))
        print(_summary(rec, args.out))
        return 0

    p.set_defaults(func=_run)

    r = csub.add_parser("recipes", help="list the compression recipes")

    r.add_argument("--markdown", action="store_true",
                   help="print the table of methods that compress/methods/README.md carries")

    def _list(args: argparse.Namespace) -> int:
        from compress.methods.registry import markdown_table, methods, recipe_names

        if args.markdown:
            print(markdown_table(), end="")
        else:
            print(" ".join(recipe_names()))
            missing = [m for m in methods() if not m.available()]
            if missing:
                import sys

                print("unavailable here: " + ", ".join(f"{m.name} (pip install 'w2v-footprint[{m.extra or m.name}]')"
                                                       for m in missing), file=sys.stderr)
        return 0

    r.set_defaults(func=_list)


def add_method_commands(csub: argparse._SubParsersAction) -> None:
    _add_distill(csub)
    _add_prune_structured(csub)
    _add_quantize(csub)
    _add_prune(csub)
    _add_maxpool(csub)
    _add_apply(csub)
