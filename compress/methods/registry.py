"""The registry of compression methods: the mechanism only, no method lives here.

A method registers itself beside its handler, in its own module (as torchao's
``register_quantize_module_handler``)::

    @register_method("int8-dynamic", Int8DynamicConfig, description="...", devices=("cpu",), quantized_int8=True)
    def apply_int8_dynamic(model, config): ...

The name is a recipe name, or a pattern: ``{x}`` stands for a whole number and a trailing ``[-suffix]`` for
any ``-word`` endings (``distill-L{n}[-suffix]`` matches ``distill-L4`` and ``distill-L4-last``).  ``options``
turns the name into config fields: a dict for a fixed name (``fp16`` -> ``{"dtype": "float16"}``), a function
``(name, captures) -> dict`` for a pattern.  :mod:`compress.methods` imports every method module, so the table
is complete whenever this module is reachable through the package.

Recipes chain with ``+``, applied left to right: ``distill-L4+int8-dynamic``.  A stage may carry config
overrides when called from Python: ``resolve_stage("int8-dynamic", {"per_channel": True})``.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import FootprintError

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]
Options = Mapping[str, Any] | Callable[[str, dict[str, str]], dict[str, Any]]

# Config fields a caller fills from its context (see fill_context); they describe where the recipe ran, not the
# recipe, so they are left out of the stage records in variant.json.
CONTEXT_FIELDS = ("do_normalize", "students_dir", "student_dir", "eval_data")


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Method:
    name: str  # the recipe name or pattern, as registered and listed
    config_cls: type
    apply: Handler
    description: str
    needs_training: bool = False  # a trained student: looked up, not computed; must come first in a chain
    devices: tuple[str, ...] = ("cpu", "cuda")  # where it is meant to run (documentation)
    available: Callable[[], bool] = _always
    missing: Callable[[], str] | None = None  # what this machine lacks for it, in a few words ("" when nothing)
    reapply_on_load: bool = False  # stored as the float model, re-applied when loaded (torchao)
    quantized_int8: bool = False  # int8 Linears: saved with the tensors storage
    runtime_only: bool = False  # changes how the model runs, not its weights: nothing to save
    last_only: bool = False  # replaces the torch module (ONNX Runtime): nothing can follow it in a chain
    extra: str | None = None  # the pip extra that makes an unavailable method available
    command: str | None = None  # the ``footprint compress`` command that builds and saves it (its --method)
    compiles: bool = False  # built by a compiler (tens of seconds, about one core): the runner builds it alongside
    options: Options = field(default_factory=dict)
    regex: re.Pattern[str] | None = None  # None: an exact name
    specificity: int = 0  # literal characters of a pattern: the most specific matching pattern wins

    @property
    def module(self) -> str:
        return self.apply.__module__

    def config_kwargs(self, name: str, match: re.Match[str] | None) -> dict[str, Any]:
        if callable(self.options):
            return dict(self.options(name, match.groupdict() if match else {}))
        return dict(self.options)


_METHODS: dict[str, Method] = {}

_PLACEHOLDER = re.compile(r"\{(\w+)\}|\[-suffix\]")


def _compile(name: str) -> tuple[re.Pattern[str] | None, int]:
    if not _PLACEHOLDER.search(name):
        return None, len(name)
    parts, literal, pos = [], 0, 0
    for m in _PLACEHOLDER.finditer(name):
        parts.append(re.escape(name[pos:m.start()]))
        literal += m.start() - pos
        parts.append(rf"(?P<{m.group(1)}>\d+)" if m.group(1) else r"(?P<suffix>(?:-[A-Za-z0-9._]+)*)")
        pos = m.end()
    parts.append(re.escape(name[pos:]))
    literal += len(name) - pos
    return re.compile("^" + "".join(parts) + "$"), literal


def register_method(name: str, config_cls: type, *, description: str, options: Options | None = None,
                    needs_training: bool = False, devices: tuple[str, ...] = ("cpu", "cuda"),
                    available: Callable[[], bool] = _always, missing: Callable[[], str] | None = None,
                    reapply_on_load: bool = False,
                    quantized_int8: bool = False, runtime_only: bool = False, last_only: bool = False,
                    extra: str | None = None, command: str | None = None,
                    compiles: bool = False) -> Callable[[Handler], Handler]:
    """Decorator: register ``handler(model, config) -> model`` under ``name``; returns the handler unchanged, so
    one handler may carry several registrations (``fp16`` and ``bf16``)."""
    if not (dataclasses.is_dataclass(config_cls) and isinstance(config_cls, type)):
        raise TypeError(f"{name}: the config must be a dataclass, got {config_cls!r}")

    def decorator(handler: Handler) -> Handler:
        old = _METHODS.get(name)
        if old is not None and (old.module, old.apply.__qualname__) != (handler.__module__, handler.__qualname__):
            raise ValueError(f"recipe {name!r} registered twice: {old.module} and {handler.__module__}")
        regex, specificity = _compile(name)
        _METHODS[name] = Method(name, config_cls, handler, description, needs_training=needs_training,
                                devices=tuple(devices), available=available, missing=missing,
                                reapply_on_load=reapply_on_load,
                                quantized_int8=quantized_int8, runtime_only=runtime_only, last_only=last_only,
                                extra=extra, command=command, compiles=compiles,
                                options=options if options is not None else {}, regex=regex,
                                specificity=specificity)
        return handler

    return decorator


def methods() -> list[Method]:
    """Every registered method, in registration order (the import order in ``compress/methods/__init__.py``)."""
    return list(_METHODS.values())


def _lookup(name: str) -> tuple[Method, re.Match[str] | None]:
    exact = _METHODS.get(name)
    if exact is not None and exact.regex is None:
        return exact, None
    found = [(m, hit) for m in _METHODS.values() if m.regex is not None and (hit := m.regex.match(name))]
    if not found:
        raise FootprintError(f"unknown recipe {name!r}; known: {', '.join(recipe_names())}")
    return max(found, key=lambda f: f[0].specificity)


def resolve_stage(name: str, overrides: dict[str, Any] | None = None) -> tuple[Method, Any]:
    """(method, config) for one stage name; ``overrides`` set config fields (unknown ones are an error)."""
    name = name.strip()
    method, match = _lookup(name)
    if not method.available():
        install = f" (pip install 'w2v-footprint[{method.extra}]')" if method.extra else ""
        raise FootprintError(f"recipe {name!r} is not available here: {method.description}{install}")
    kw = method.config_kwargs(name, match)
    fields = {f.name for f in dataclasses.fields(method.config_cls)}
    for k, v in (overrides or {}).items():
        if k not in fields:
            raise FootprintError(f"recipe {name!r}: unknown option {k!r} (options: {', '.join(sorted(fields))})")
        kw[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
    return method, method.config_cls(**kw)


def why_unavailable(method: Method) -> str:
    """What this machine lacks for ``method``, in a few words: the method's own answer, else its pip extra."""
    said = method.missing() if method.missing is not None else ""
    if said:
        return said
    if method.extra:
        return f"the '{method.extra}' extra is not installed (pip install 'w2v-footprint[{method.extra}]')"
    return f"{_short(method.name)} is not available here"


def unavailable_reason(recipe: str) -> str | None:
    """Why a recipe (a chain) cannot run here, from its first unavailable stage; None when every stage can."""
    for part in (p.strip() for p in recipe.split("+") if p.strip()):
        method, _ = _lookup(part)
        if not method.available():
            return why_unavailable(method)
    return None


def recipe_names() -> list[str]:
    """The recipe names and patterns usable here (methods whose dependency is missing are left out)."""
    return [_short(m.name) for m in methods() if m.available()]


def _short(name: str) -> str:
    return name.replace("[-suffix]", "")


def command_methods(command: str) -> list[str]:
    """Recipe names the ``footprint compress <command>`` command builds: its ``--method`` choices."""
    return [m.name for m in methods() if m.command == command]


_DEVICE_WORDS = {("cpu",): "CPU", ("cuda",): "GPU", ("cpu", "cuda"): "any"}


def markdown_table() -> str:
    """The README's table of methods, generated from the registry (all methods, available here or not)."""
    rows = ["| recipe | module | what | device |", "|---|---|---|---|"]
    for m in methods():
        module = m.module.rsplit(".", 1)[-1] + ".py"
        device = _DEVICE_WORDS.get(tuple(sorted(m.devices)), ", ".join(m.devices))
        rows.append(f"| `{m.name}` | `{module}` | {m.description} | {device} |")
    return "\n".join(rows) + "\n"


@dataclass
class Stage:
    name: str
    method: Method
    config: Any
    config_dict: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """As recorded in variant.json: the config as applied (a field filled while applying, such as the
        calibration data chosen for the evaluated set, included)."""
        return {"name": self.name, "config": config_dict(self.config)}


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
        if stages and stages[-1].method.last_only:
            raise FootprintError(f"recipe {recipe!r}: {stages[-1].name} runs the model in another runtime and must "
                                 f"come last (nothing can follow it: {part})")
        if method.name == "baseline" and len(parts) > 1:
            continue
        stages.append(Stage(part, method, cfg, config_dict(cfg)))
    return stages or [Stage("baseline", *resolve_stage("baseline"), {})]


def config_dict(cfg: Any) -> dict[str, Any]:
    """A stage's config as recorded in variant.json: the recipe's fields, not the caller's context."""
    d = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}
    return {k: v for k, v in d.items() if k not in CONTEXT_FIELDS}


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

