"""Trained students as recipe stages: ``distill-L{n}[-suffix]`` and ``maxpool-conv{c}[-suffix]`` name a student
that ``footprint compress distill`` trained, ``prune-structured-{p}[-suffix]`` one that ``footprint compress
prune-structured`` pruned and distilled; the stage replaces the model by it (so it must come first in a chain).

Students live in ``<students dir>/<recipe name>/``: ``compress/embedded/students`` by default, or
``$W2V_FOOTPRINT_STUDENTS``.  A missing one is a one-line error giving the command that trains it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import FootprintError
from compress.methods.registry import register_method
from compress.methods.storage import load_variant_dir

STUDENTS_ENV = "W2V_FOOTPRINT_STUDENTS"


def default_students_dir() -> Path:
    env = os.environ.get(STUDENTS_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "embedded" / "students"


@dataclass
class TrainedStudentConfig:
    name: str = ""  # the directory name under the students dir, e.g. distill-L4, distill-L4-last
    layers: int | None = None
    conv_layers: int | None = None
    students_dir: str | None = None
    student_dir: str | None = None  # an explicit directory (overrides the lookup)
    flops_keep_percent: int | None = None  # prune-structured-{p}: p % of the transformer FLOPs kept


def train_command(config: TrainedStudentConfig, out: Path) -> str:
    name, layers, conv_layers = config.name, config.layers, config.conv_layers
    if config.flops_keep_percent is not None:
        return (f"footprint compress prune-structured --model embedded --flops-keep "
                f"{config.flops_keep_percent / 100:g} --out {out}")
    cmd = f"footprint compress distill --model embedded --out {out}"
    if conv_layers is not None:
        cmd += f" --student-arch maxpool-conv{conv_layers}"
    if layers is not None:
        cmd += f" --layers {layers}"
    elif conv_layers is not None:
        cmd += " --layers 12"
    if name.endswith("-last"):
        cmd += " --init last"
    return cmd


def student_path(config: TrainedStudentConfig) -> Path:
    if config.student_dir:
        return Path(config.student_dir).expanduser()
    root = Path(config.students_dir).expanduser() if config.students_dir else default_students_dir()
    return root / config.name


def _distill_options(name: str, captures: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "layers": int(captures["n"])}


def _maxpool_options(name: str, captures: dict[str, str]) -> dict[str, Any]:
    layers = re.search(r"-L(\d+)", captures.get("suffix") or "")
    return {"name": name, "conv_layers": int(captures["c"]), "layers": int(layers.group(1)) if layers else None}


def _pruned_options(name: str, captures: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "flops_keep_percent": int(captures["p"])}


# decorators run bottom-up: distill-L{n} is registered (and listed) first
@register_method("prune-structured-{p}[-suffix]", TrainedStudentConfig, options=_pruned_options,
                 needs_training=True, description="a structurally pruned model (heads, feed-forward neurons, front-end "
                 "conv channels; p % of the transformer FLOPs kept) recovered by distillation, looked up the same way")
@register_method("maxpool-conv{c}[-suffix]", TrainedStudentConfig, options=_maxpool_options, needs_training=True,
                 description="the trained max-pool student, looked up the same way")
@register_method("distill-L{n}[-suffix]", TrainedStudentConfig, options=_distill_options, needs_training=True,
                 description="a trained student, looked up at `<students>/distill-L{n}[-suffix]/` "
                             "(`compress/embedded/students`, or `$W2V_FOOTPRINT_STUDENTS`); a missing one is a "
                             "one-line error giving the command that trains it")
def apply_trained_student(model: Any, config: TrainedStudentConfig) -> Any:
    """Replace ``model`` by the trained student the recipe names (it must have been distilled from it)."""
    path = student_path(config)
    if not (path / "variant.json").exists() and not (path / "config.json").exists():
        raise FootprintError(f"{path}: no trained student {config.name!r}; train it with: "
                             f"{train_command(config, path)}")
    student, _, _ = load_variant_dir(path)
    return student
