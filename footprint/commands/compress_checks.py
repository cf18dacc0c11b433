"""The option checks of each ``footprint compress`` command (``option_checks`` has the checks themselves).

Each ``check_<command>(args)`` runs first in its handler: every option's value is checked before a model is
built or anything is written, and a bad one is one line, ``--option VALUE: problem``.  Standard library only at
module level, like the command modules.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from footprint.commands import option_checks as oc

SEED = oc.within(0, 2 ** 32 - 1)  # numpy's seed range
SCHEDULE_LAYERS = 24  # prune's schedule is written for the 24-layer model, mapped to other depths


def check_training(args: argparse.Namespace) -> None:
    """The distillation options (``distill``, and the recovery of ``prune-structured``)."""
    oc.check(args, {
        "model": oc.model_spec(), "out": oc.out_dir, "data": oc.data_spec, "hours_train": oc.POSITIVE,
        "val_data": oc.data_spec, "val_utterances": oc.NON_NEGATIVE, "data_fraction": oc.FRACTION,
        "epochs": oc.COUNT, "lr": oc.POSITIVE, "warmup_epochs": oc.NON_NEGATIVE, "temperature": oc.POSITIVE,
        "feature_penalty": oc.NON_NEGATIVE, "ctc_weight": oc.NON_NEGATIVE, "batch_seconds": oc.POSITIVE,
        "grad_clip": oc.NON_NEGATIVE, "seed": SEED, "device": oc.device, "threads": oc.COUNT,
        "cache_dir": oc.out_dir, "checkpoint_minutes": oc.NON_NEGATIVE, "checkpoint_steps": oc.COUNT,
        "max_minutes": oc.POSITIVE, "max_steps": oc.COUNT, "layerdrop": oc.PROBABILITY,
        "mask_time_prob": oc.PROBABILITY,
    })


def check_distill(args: argparse.Namespace) -> None:
    check_training(args)
    oc.check(args, {"init_from": oc.model_spec(recipes=False), "layers": oc.COUNT})
    source = oc.model_config(args.init_from or args.model)  # the student's layers are picked from this model
    n = oc.n_layers(source)
    if args.layers is not None and n is not None and args.layers > n:
        oc.fail("layers", args.layers, f"more than the {n} layers of {args.init_from or args.model}")
    arch = args.student_arch
    if arch != "standard":
        try:
            conv = int(arch.removeprefix("maxpool-conv")) if arch.startswith("maxpool-conv") else None
        except ValueError:
            conv = None
        if conv is None:
            oc.fail("student_arch", arch, "expected standard or maxpool-conv<N>")
        _maxpool_conv_layers("student_arch", arch, conv, source)


def check_prune_structured(args: argparse.Namespace) -> None:
    check_training(args)
    oc.check(args, {"flops_keep": oc.FRACTION, "conv_keep": oc.FRACTION, "conv_layers": oc.int_list,
                    "min_heads": oc.COUNT, "min_ffn": oc.COUNT, "calibration_utterances": oc.COUNT})
    cfg = oc.model_config(args.model)
    n_conv = oc.n_conv_layers(cfg)
    if n_conv is not None:
        from compress.methods.prune_structured.run import conv_layers_problem

        problem = conv_layers_problem(tuple(int(x) for x in args.conv_layers.split(",") if x.strip()), n_conv)
        if problem:
            oc.fail("conv_layers", args.conv_layers, problem)
    for dest, key in (("min_heads", "num_attention_heads"), ("min_ffn", "intermediate_size")):
        have = (cfg or {}).get(key)
        if isinstance(have, int) and getattr(args, dest) > have:
            oc.fail(dest, getattr(args, dest), f"more than the model's {have} per layer")


def check_quantize(args: argparse.Namespace) -> None:
    oc.check(args, {"model": oc.model_spec(), "out": oc.out_dir, "calibration_data": oc.data_spec,
                    "calibration_utterances": oc.COUNT})


def _schedule(v: str) -> str | None:
    try:
        items = [(int(a), float(b)) for a, b in (item.split(":") for item in v.split(",") if item.strip())]
    except ValueError:
        return "expected FIRST:SENSITIVITY,... (e.g. 3:0.3,17:0.4)"
    if not items:
        return "expected at least one FIRST:SENSITIVITY"
    for first, sens in items:
        if not 0 <= first < SCHEDULE_LAYERS:
            return f"layer {first} is outside the {SCHEDULE_LAYERS}-layer schedule (0 to {SCHEDULE_LAYERS - 1})"
        if not math.isfinite(sens) or sens < 0:
            return f"sensitivity {sens:g} of layer {first} must be at least 0"
    firsts = [f for f, _ in items]
    return "a layer listed twice" if len(set(firsts)) != len(firsts) else None


def _sensitivities(v: str) -> str | None:
    for name, s in json.loads(v).items():
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s < 0:
            return f"the sensitivity of {name!r} must be a number at least 0, not {s!r}"
    return None


def _stored_module_names(spec: str) -> set[str] | None:
    """The module names of ``embedded`` or a model directory, from its weights file's tensor names (read, not
    loaded: loading prints progress bars around the one line); None where there is no such file."""
    from compress.methods.storage import TENSORS_FILE
    from compress.variants import teacher_dir

    d = teacher_dir() if spec == "embedded" else Path(spec).expanduser()
    f = next((d / n for n in ("model.safetensors", TENSORS_FILE) if (d / n).is_file()), None)
    if f is None:
        return None
    from safetensors import safe_open

    with safe_open(str(f), framework="pt") as st:
        keys = list(st.keys())
    return {k.rsplit(".", i)[0] for k in keys for i in range(1, k.count(".") + 1)} | {""}


def check_prune(args: argparse.Namespace) -> None:
    oc.check(args, {"model": oc.model_spec(), "out": oc.out_dir, "conv_sensitivity": oc.NON_NEGATIVE,
                    "schedule": _schedule, "overrides": [oc.json_object, _sensitivities]})
    names = _stored_module_names(args.model) if json.loads(args.overrides) else None
    if names is not None:
        _check_overrides(args, names)


def check_prune_overrides(args: argparse.Namespace, model: Any) -> None:
    """Once a recipe's model is built (before anything is written): each --overrides name is one of its
    modules.  A directory's names were checked up front."""
    _check_overrides(args, {n for n, _ in model.named_modules()})


def _check_overrides(args: argparse.Namespace, names: set[str]) -> None:
    for name in json.loads(args.overrides):
        if name not in names:
            oc.fail("overrides", args.overrides, f"the model has no module {name!r}")


def _maxpool_conv_layers(dest: str, value: Any, conv: int, cfg: dict[str, Any] | None) -> None:
    n = oc.n_conv_layers(cfg)
    if conv < 1 or (n is not None and conv > n):
        oc.fail(dest, value, f"conv layers kept must be between 1 and the model's {n or 'conv layer count'}")
    if n is not None:
        from compress.methods.maxpool import layers_to_replace
        from core.errors import FootprintError

        try:
            layers_to_replace(SimpleNamespace(conv_dim=cfg["conv_dim"]), conv)
        except FootprintError as exc:
            oc.fail(dest, value, str(exc).removeprefix("maxpool: "))


def check_maxpool(args: argparse.Namespace) -> None:
    oc.check(args, {"model": oc.model_spec(), "out": oc.out_dir, "conv_layers": oc.COUNT})
    _maxpool_conv_layers("conv_layers", args.conv_layers, args.conv_layers, oc.model_config(args.model))


def _recipe(v: str) -> str | None:
    from compress.methods.registry import parse_recipe
    from core.errors import FootprintError

    try:
        with oc.quiet_optional_imports():
            parse_recipe(v)
    except FootprintError as exc:
        return str(exc)
    return None


def check_apply(args: argparse.Namespace) -> None:
    oc.check(args, {"recipe": _recipe, "teacher": oc.model_spec(recipes=False), "students_dir": oc.existing_dir,
                    "out": oc.out_dir})


def _arch_overrides(v: str) -> str | None:
    from transformers import Wav2Vec2Config

    known = Wav2Vec2Config()
    unknown = [k for k in json.loads(v) if not hasattr(known, k)]
    return f"unknown Wav2Vec2Config field(s): {', '.join(unknown)}" if unknown else None


def check_train_teacher(args: argparse.Namespace) -> None:
    oc.check(args, {
        "out": oc.out_dir, "corpus": oc.existing_dir, "hours_train": oc.POSITIVE, "steps": oc.COUNT,
        "time_budget_minutes": oc.POSITIVE, "peak_lr": oc.POSITIVE, "batch_seconds": oc.POSITIVE,
        "eval_every": oc.COUNT, "checkpoint_minutes": oc.NON_NEGATIVE, "device": oc.device, "threads": oc.COUNT,
        "dev_eval_utterances": oc.COUNT, "init_from": oc.model_spec(recipes=False), "extend_steps": oc.NON_NEGATIVE,
        "warmup_fraction": oc.within(0, 1, hi_open=True), "arch_overrides": [oc.json_object, _arch_overrides],
    })
