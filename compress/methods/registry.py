"""Recipe names -> (config dataclass, ``apply(model, config) -> model``), and ``+`` chains of them.

=============================  ===========================================================================
recipe                         what it does
=============================  ===========================================================================
``baseline``                   the model as it is
``distill-L{n}[-suffix]``      a student trained by ``footprint compress distill`` (needs training): resolves to
                               ``<students dir>/distill-L{n}[-suffix]/`` (default ``compress/embedded/students``,
                               or ``$W2V_FOOTPRINT_STUDENTS``); must come first in a chain
``maxpool-conv{c}[-suffix]``   the trained max-pool student (needs training), resolved the same way
``maxpool-conv{c}-untrained``  the max-pool structure applied to the model, untrained (timing/FLOPs only)
``int8-dynamic``               every nn.Linear int8, dynamic activations (CPU)
``int8-static``                every nn.Linear int8 with calibrated activations (CPU; beyond the paper)
``fp16`` / ``bf16``            half precision (GPU)
``bf16-autocast``              fp32 weights, forward under bf16 autocast (CPUs with AVX512-BF16/AMX, GPUs)
``int8-weight-only-torchao``   torchao int8 weight-only (GPU; only when torchao is installed)
``prune-sensitivity``          Distiller's sensitivity pruner with the paper's schedule
=============================  ===========================================================================

Chains apply left to right: ``distill-L4+int8-dynamic``, ``prune-sensitivity+int8-dynamic``.  A stage may carry
config overrides as JSON when called from Python: ``resolve_stage("int8-dynamic", {"per_channel": True})``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import FootprintError

log = logging.getLogger(__name__)

STUDENTS_ENV = "W2V_FOOTPRINT_STUDENTS"


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Method:
    name: str
    config_cls: type
    apply: Callable[[Any, Any], Any]
    description: str
    needs_training: bool = False
    devices: tuple[str, ...] = ("cpu", "cuda")
    available: Callable[[], bool] = _always
    reapply_on_load: bool = False  # stored as the float model, re-applied when loaded (torchao)
    quantized_int8: bool = False
    runtime_only: bool = False  # changes how the model runs, not its weights: nothing to save


# ----------------------------------------------------------------------------------------------- trained students
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


def train_command(name: str, layers: int | None, conv_layers: int | None, out: Path) -> str:
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


def apply_trained_student(model: Any, config: TrainedStudentConfig) -> Any:
    """Replace ``model`` by the trained student the recipe names (it must have been distilled from it)."""
    from compress.methods.storage import load_variant_dir

    path = student_path(config)
    if not (path / "variant.json").exists() and not (path / "config.json").exists():
        raise FootprintError(f"{path}: no trained student {config.name!r}; train it with: "
                             f"{train_command(config.name, config.layers, config.conv_layers, path)}")
    student, _, _ = load_variant_dir(path)
    return student


# ----------------------------------------------------------------------------------------------- the table
def _baseline(model: Any, config: Any) -> Any:
    return model


@dataclass
class BaselineConfig:
    pass


def _methods() -> dict[str, Method]:
    from compress.methods import maxpool, prune, quantize

    return {m.name: m for m in [
        Method("baseline", BaselineConfig, _baseline, "the model as it is"),
        Method("int8-dynamic", quantize.Int8DynamicConfig, quantize.apply_int8_dynamic,
               "int8 weights, dynamic int8 activations, every nn.Linear (CPU)", devices=("cpu",),
               quantized_int8=True),
        Method("int8-static", quantize.Int8StaticConfig, quantize.apply_int8_static,
               "int8 Linear layers with calibrated activations, fp32 between them (CPU)", devices=("cpu",),
               quantized_int8=True),
        Method("fp16", quantize.HalfConfig, quantize.apply_half, "float16 weights and compute (GPU)"),
        Method("bf16", quantize.HalfConfig, quantize.apply_half, "bfloat16 weights and compute (GPU)"),
        Method("bf16-autocast", quantize.AutocastConfig, quantize.apply_autocast,
               "fp32 weights, forward under bf16 autocast (CPUs with AVX512-BF16/AMX, GPUs)", runtime_only=True),
        Method("int8-weight-only-torchao", quantize.TorchaoInt8WeightOnlyConfig,
               quantize.apply_torchao_int8_weight_only, "torchao int8 weight-only (GPU)",
               available=quantize.torchao_available, reapply_on_load=True),
        Method("prune-sensitivity", prune.PruneConfig, prune.apply_prune,
               "Distiller sensitivity pruning, the paper's schedule"),
        Method("maxpool-untrained", maxpool.MaxPoolConfig, maxpool.apply_maxpool,
               "conv layers replaced by max-pooling, untrained (timing and FLOPs only)"),
        Method("trained-student", TrainedStudentConfig, apply_trained_student,
               "a student trained by footprint compress distill", needs_training=True),
    ]}


_STUDENT_RE = re.compile(r"^distill-L(?P<layers>\d+)(?P<suffix>(-[A-Za-z0-9._]+)*)$")
_MAXPOOL_RE = re.compile(r"^maxpool-conv(?P<conv>\d+)(?P<suffix>(-[A-Za-z0-9._]+)*)$")


def resolve_stage(name: str, overrides: dict[str, Any] | None = None) -> tuple[Method, Any]:
    """(method, config) for one stage name; ``overrides`` set config fields (unknown ones are an error)."""
    methods = _methods()
    name = name.strip()
    kw: dict[str, Any] = {}
    if name in ("fp16", "bf16"):
        method, kw = methods[name], {"dtype": "float16" if name == "fp16" else "bfloat16"}
    elif name in methods and name not in ("trained-student", "maxpool-untrained"):
        method = methods[name]
    elif (m := _MAXPOOL_RE.match(name)) and m.group("suffix") == "-untrained":
        method, kw = methods["maxpool-untrained"], {"conv_layers": int(m.group("conv"))}
    elif m := _MAXPOOL_RE.match(name):
        layers = re.search(r"-L(\d+)", m.group("suffix") or "")
        method, kw = methods["trained-student"], {"name": name, "conv_layers": int(m.group("conv")),
                                                  "layers": int(layers.group(1)) if layers else None}
    elif m := _STUDENT_RE.match(name):
        method, kw = methods["trained-student"], {"name": name, "layers": int(m.group("layers"))}
    else:
        raise FootprintError(f"unknown recipe {name!r}; known: {', '.join(recipe_names())}")
    if not method.available():
        raise FootprintError(f"recipe {name!r} is not available here: {method.description} "
                             "(pip install 'w2v-footprint[torchao]')")
    fields = {f.name for f in dataclasses.fields(method.config_cls)}
    for k, v in (overrides or {}).items():
        if k not in fields:
            raise FootprintError(f"recipe {name!r}: unknown option {k!r} (options: {', '.join(sorted(fields))})")
        kw[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
    return method, method.config_cls(**kw)


def recipe_names() -> list[str]:
    names = ["baseline", "distill-L{n}", "maxpool-conv{c}", "maxpool-conv{c}-untrained", "int8-dynamic",
             "int8-static", "fp16", "bf16", "bf16-autocast", "prune-sensitivity"]
    from compress.methods.quantize import torchao_available

    if torchao_available():
        names.append("int8-weight-only-torchao")
    return names


@dataclass
class Stage:
    name: str
    method: Method
    config: Any
    config_dict: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config_dict}


def parse_recipe(recipe: str, overrides: dict[str, dict[str, Any]] | None = None) -> list[Stage]:
    """``a+b+c`` -> stages; a trained student may only come first; each stage at most once."""
    parts = [p.strip() for p in recipe.split("+") if p.strip()]
    if not parts:
        raise FootprintError("empty recipe")
    stages: list[Stage] = []
    for i, part in enumerate(parts):
        method, cfg = resolve_stage(part, (overrides or {}).get(part))
        if method.needs_training and i > 0:
            raise FootprintError(f"recipe {recipe!r}: {part} is a trained student and must come first")
        if method.name == "baseline" and len(parts) > 1:
            continue
        stages.append(Stage(part, method, cfg, _config_dict(cfg)))
    return stages or [Stage("baseline", *resolve_stage("baseline"), {})]


def _config_dict(cfg: Any) -> dict[str, Any]:
    d = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}
    return {k: v for k, v in d.items() if k not in ("do_normalize", "students_dir", "student_dir")}


def fill_context(cfg: Any, **context: Any) -> Any:
    """Set config fields the recipe leaves to its caller (do_normalize, students_dir) when they are unset."""
    for k, v in context.items():
        if hasattr(cfg, k) and getattr(cfg, k) is None and v is not None:
            setattr(cfg, k, v)
    return cfg


def apply_stages(model: Any, stages: list[Stage], **context: Any) -> Any:
    for st in stages:
        fill_context(st.config, **context)
        log.info("applying %s", st.name)
        model = st.method.apply(model, st.config)
    return model
