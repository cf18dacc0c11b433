"""Model specs -> ready-to-run :class:`~core.variant.Variant` objects (what the benchmark runner loads).

A spec is one of:

* ``embedded`` - the shipped teacher, ``compress/embedded/teacher/`` (or ``$W2V_FOOTPRINT_TEACHER``);
* a directory - a saved variant (Hugging Face files + ``variant.json``) or any Hugging Face ``Wav2Vec2ForCTC``;
* a recipe - ``int8-dynamic``, ``prune-sensitivity+int8-dynamic``, ``distill-L4+int8-dynamic`` ... built from
  the teacher (``teacher=``, default ``embedded``) by :mod:`compress.methods.registry`; a ``distill-L{n}``
  stage loads the trained student from the students directory (``students_dir=`` or
  ``$W2V_FOOTPRINT_STUDENTS``, default ``compress/embedded/students``) and says how to train it if missing.

``Variant.info``: params, size_mb (the weights as the model runs: params x 4 / 1e6 in fp32, the paper's MB; int8
and half-precision models their tensor bytes, as the paper's 354 MB int8 model), size_on_disk_mb (bytes of the stored
weights: the real file for a directory, the bytes ``save_variant`` would write for an in-memory recipe),
memory_mb, sparsity, conv_layers, transformer_layers, storage, compute_dtype, trained, FLOPs per second of audio;
one-time costs: compile_s, export_s, calibration_s (seconds, when spent building it), compile_cache ("cold" | "warm" |
""), calibration_data (the spec calibrated on, "" if none), length_buckets ("" or the step, e.g. "0.5s").
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from core.errors import FootprintError
from core.variant import Variant

__all__ = ["Variant", "build_arch_variant", "build_variant", "load_variant", "teacher_dir"]

log = logging.getLogger(__name__)

TEACHER_ENV = "W2V_FOOTPRINT_TEACHER"
ARCH_PREFIX = "arch-"  # arch-<large|base|embedded>[-L<n>][+recipe]: random weights, timing only


def teacher_dir() -> Path:
    env = os.environ.get(TEACHER_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent / "embedded" / "teacher"


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or spec.startswith((".", "~")) or os.sep in spec


def _info(model: Any, rec: dict[str, Any], size_on_disk_bytes: int | None) -> dict[str, Any]:
    from core.model_stats import compute_dtype, model_stats

    if hasattr(model, "variant_info"):  # a model run by another runtime (ONNX Runtime) says what it is itself
        info = model.variant_info()
        info["trained"] = bool(rec.get("trained", True))
        info.setdefault("compile_cache", "")
        info.setdefault("calibration_data", rec.get("calibration_data", ""))
        info.setdefault("length_buckets", "")
        return info
    info = model_stats(model)
    if size_on_disk_bytes is not None:
        info["size_on_disk_mb"] = round(size_on_disk_bytes / 1e6, 6)
    info["storage"] = rec.get("storage", "hf")
    from compress.methods.front_end import front_end_dtype
    from compress.methods.quantize import autocast_dtype

    info["compute_dtype"] = str(compute_dtype(model)).replace("torch.", "")
    if autocast_dtype(model):  # fp32 weights, bf16 kernels
        info["compute_dtype"] = f"{autocast_dtype(model)}-autocast"
    elif front_end_dtype(model) and info["compute_dtype"] != front_end_dtype(model):  # the transformer as it was
        info["compute_dtype"] = f"{front_end_dtype(model)}-front-end"
    encoder_autocast = getattr(model, "_footprint_encoder_autocast", None)  # int8-inductor-bf16: int8 + bf16 rest
    if encoder_autocast:
        info["compute_dtype"] = (f"{encoder_autocast}-front-end+encoder" if front_end_dtype(model)
                                 else f"{encoder_autocast}-encoder")
    info["trained"] = bool(rec.get("trained", True))
    from compress.methods.compiled import compiled_info

    info.update(compiled_info(model))
    from compress.methods.compiled import one_time_info

    for key, value in one_time_info(model, rec).items():
        info.setdefault(key, value)
    from compress.methods.quantize import quantized_modules

    engine = getattr(model, "_footprint_quantized_engine", None)  # what its int8 weights were packed for
    if quantized_modules(model) or engine:
        import torch

        info["quantized_engine"] = engine or torch.backends.quantized.engine
    if getattr(model, "_footprint_int8_reduce_range", None) is not None:  # 7-bit int8 ranges (a CPU without VNNI)
        info["int8_reduce_range"] = model._footprint_int8_reduce_range
    if "pruned_tensors_sparsity" in rec:
        info["pruned_tensors_sparsity"] = rec["pruned_tensors_sparsity"]
    return info


def _finish(model: Any, do_normalize: bool, name: str, recipe: str, rec: dict[str, Any], path: Path | None,
            device: str, size_on_disk: int | None) -> Variant:
    import torch

    from core.model_stats import compute_dtype
    from compress.methods.quantize import cpu_has_native_bf16, quantized_modules

    dev = torch.device(device)
    if dev.type != "cpu" and quantized_modules(model):
        raise FootprintError(f"{name}: int8 (torch.ao) quantized models run on CPU only, not {device}")
    if dev.type != "cpu" and any(hasattr(m, "footprint_weights") for m in model.modules()):
        raise FootprintError(f"{name}: int8-inductor's compiled oneDNN graph runs on x86 CPUs only, not {device}")
    dtype = compute_dtype(model)
    if dev.type == "cpu" and (dtype == torch.float16 or (dtype == torch.bfloat16 and not cpu_has_native_bf16())):
        log.warning("%s: %s on this CPU is slow or unsupported; it is meant for GPU (bf16: or a CPU with "
                    "AVX512-BF16/AMX)", name, dtype)
    model = model.to(dev).eval()
    return Variant(model=model, do_normalize=bool(do_normalize), name=name, recipe=recipe,
                   info=_info(model, rec, size_on_disk), path=str(path) if path else None, dtype=dtype,
                   device=str(dev), record=rec)


def _load_dir(path: Path, device: str, name: str | None = None) -> Variant:
    from compress.methods.base import weights_bytes_on_disk
    from compress.methods.storage import load_variant_dir

    model, do_norm, rec = load_variant_dir(path)
    recipe = rec.get("recipe", "baseline")
    return _finish(model, do_norm, name or path.name, recipe, rec, path, device, weights_bytes_on_disk(path))


def _load_teacher(teacher: str, device: str) -> Variant:
    if teacher == "embedded":
        d = teacher_dir()
        if not d.is_dir():
            raise FootprintError(f"{d}: the shipped teacher is missing (set ${TEACHER_ENV} to a model directory, "
                                 "or train one with: footprint compress train-teacher --out DIR)")
        v = _load_dir(d, device, name="teacher")
        return v
    p = Path(teacher).expanduser()
    if p.is_dir():
        return _load_dir(p, device)
    raise FootprintError(f"{teacher}: teacher must be 'embedded' or a model directory")


def build_variant(recipe: str, teacher: str = "embedded", device: str = "cpu", students_dir: str | None = None,
                  overrides: dict[str, dict[str, Any]] | None = None, calibration_data: str | None = None,
                  eval_data: str | None = None) -> tuple[Variant, list[Any], Variant | None]:
    """Apply a recipe; returns (variant, stages, the variant it was built from).  ``calibration_data`` /
    ``eval_data``: for stages that calibrate, the audio to calibrate on / the evaluated set, whose training split is
    the default and which the calibration audio must not overlap (:mod:`compress.methods.calibration`)."""
    from compress.methods.registry import apply_stages, parse_recipe
    from compress.methods.storage import planned_size_bytes, source_info

    stages = parse_recipe(recipe, overrides)
    first = stages[0]
    if first.method.needs_training:
        from compress.methods.registry import fill_context

        fill_context(first.config, students_dir=students_dir)
        base = _load_dir_or_explain(first, device="cpu")
        rest = stages[1:]
        _check_student_teacher(base, teacher)
    else:
        base = _load_teacher(teacher, "cpu")
        rest = [s for s in stages if s.method.name != "baseline"]
    if first.method.needs_training and not rest:  # just the trained student: the directory as it is
        base.name = base.recipe = recipe
        base.model = base.model.to(device)
        base.device = device
        return base, stages, base
    model = apply_stages(base.model, rest, do_normalize=base.do_normalize, students_dir=students_dir,
                         calibration_data=calibration_data, eval_data=eval_data)
    src = base.record
    rec = {"recipe": recipe, "stages": [s.as_record() for s in stages],
           "source_model": base.path or teacher, "source_hash": src.get("source_hash") if first.method.needs_training
           else (source_info(teacher, Path(base.path)).get("hash") if base.path else None),
           "storage": "tensors" if any(s.method.quantized_int8 for s in rest) else src.get("storage", "hf"),
           "trained": bool(src.get("trained", True)),
           "calibration_data": getattr(model, "_footprint_calibration_data", None) or src.get("calibration_data", "")}
    if hasattr(model, "pruning_report"):
        rec["pruned_tensors_sparsity"] = model.pruning_report["pruned_tensors_sparsity"]
    reapply = any(s.method.reapply_on_load for s in rest)
    size = None if reapply or hasattr(model, "variant_info") else planned_size_bytes(model)
    v = _finish(model, base.do_normalize, recipe, recipe, rec, None, device, size)
    return v, stages, base


def _check_student_teacher(student: Variant, teacher: str) -> None:
    """Warn when a shipped student was distilled from other teacher weights than the current teacher's."""
    from compress.methods.base import dir_weights_hash

    t_dir = teacher_dir() if teacher == "embedded" else Path(teacher).expanduser()
    made_from = student.record.get("source_hash")
    if made_from and t_dir.is_dir():
        current = dir_weights_hash(t_dir)
        if current and current != made_from:
            log.warning("%s was distilled from teacher weights %s, the teacher now is %s: retrain it for a "
                        "like-for-like comparison", student.path, made_from[:19], current[:19])


def _load_dir_or_explain(stage: Any, device: str) -> Variant:
    from compress.methods.students import student_path

    path = student_path(stage.config)
    if not path.is_dir():
        stage.method.apply(None, stage.config)  # raises the one-line "train it with: ..." error
    return _load_dir(path, device, name=stage.name)


def build_arch_variant(spec: str, device: str = "cpu") -> Variant:
    """Random weights of a named architecture at full size: timing only (no download, no WER).  Recipes that
    need no training may follow: ``arch-large-L12+int8-dynamic+compile``, ``arch-large-L12+ort-int8``."""
    import torch
    from transformers import Wav2Vec2ForCTC

    from compress.methods.registry import apply_stages, parse_recipe
    from core.arch import ARCHS, wav2vec2_config

    base, _, post = spec.partition("+")
    parts = base.split("-")  # arch-large-L24
    if len(parts) < 2 or parts[1] not in ARCHS:
        raise FootprintError(f"{spec}: expected arch-<{'|'.join(ARCHS)}>[-L<layers>][+recipe]")
    layers = None
    if len(parts) >= 3:
        try:
            layers = int(parts[2].lstrip("Ll"))
        except ValueError:
            raise FootprintError(f"{spec}: bad layer count {parts[2]!r}") from None
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(wav2vec2_config(parts[1], layers=layers)).eval()
    do_norm = parts[1] == "embedded" or ARCHS[parts[1]].get("feat_extract_norm") == "layer"
    if post:
        stages = parse_recipe(post)
        trained = [st.name for st in stages if st.method.needs_training]
        if trained:
            raise FootprintError(f"{spec}: {', '.join(trained)} needs trained weights; random-weight "
                                 "architectures take only recipes computed from the model")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = apply_stages(model, stages, do_normalize=do_norm)
    # recipe "arch-...": the reports' timing-only rows; dtype and device as any variant (int8 refused off CPU)
    v = _finish(model, do_norm, spec, spec, {"trained": False}, None, device, None)
    v.info["size_on_disk_mb"] = float("nan")
    return v


def _check_not_a_path(spec: str, p: Path) -> None:
    if p.is_file():
        raise FootprintError(f"{spec}: a file, not a model directory (a checkpoint is imported first: "
                             f"footprint model import {spec} --out DIR)")
    if _looks_like_path(spec) or p.suffix in (".pt", ".bin", ".safetensors"):
        raise FootprintError(f"{spec}: no such model directory")


def check_model_spec(spec: str) -> None:
    """Read what a model spec names on disk without building the model: a missing, unreadable or corrupt
    ``variant.json``, ``config.json``, ``preprocessor_config.json`` or weights file is one line naming it.

    Recipes, ``embedded`` and ``arch-...`` specs are not checked (they are resolved when loaded)."""
    from compress.methods.storage import TENSORS_FILE, read_variant_json
    from compress.model_io.hf import _check_model_dir, _read_json, check_safetensors, load_config

    spec = str(spec).strip()
    if spec.startswith(ARCH_PREFIX) or spec == "embedded":
        return
    p = Path(spec).expanduser()
    if not p.is_dir():
        _check_not_a_path(spec, p)
        return
    rec = read_variant_json(p)
    if rec.get("storage", "hf") == "tensors":
        _read_json(p / "config.json")
        check_safetensors(p / TENSORS_FILE)
    else:
        _check_model_dir(p)
    load_config(p)


def compiles_when_built(spec: str) -> bool:
    """Whether building ``spec`` runs a compiler (a ``compiles`` method in its recipe: Inductor, AOTInductor): the
    builds a runner can do alongside its own (bench/side_builds.py).  A model directory or an unknown name: False."""
    import compress.methods  # noqa: F401  (registers every method)
    from compress.methods.registry import resolve_stage

    for part in (p.strip() for p in spec.split("+")):
        try:
            method, _ = resolve_stage(part)
        except FootprintError:
            continue
        if method.compiles:
            return True
    return False


# what load_variant imports on first use: every method module (torchao, ONNX and OpenVINO wrappers) and the model
LOADER_MODULES = ("compress.methods", "transformers.models.wav2vec2.modeling_wav2vec2")


def import_loader_dependencies() -> None:
    """Import :data:`LOADER_MODULES`: about 2.8 s on a 2-vCPU EPYC.  Whoever times a build (the runner's one-time
    cost, the deploy probe) calls this first, so the first variant it builds (usually the teacher, the reference of
    every break-even) is not charged for imports that every later one skips."""
    import importlib

    for name in LOADER_MODULES:
        importlib.import_module(name)


def load_variant(spec: str, device: str = "cpu", teacher: str = "embedded", students_dir: str | None = None,
                 name: str | None = None, calibration_data: str | None = None,
                 eval_data: str | None = None) -> Variant:
    """A model spec (``embedded``, a directory, a recipe, or ``arch-...``) -> :class:`Variant` on ``device``.
    ``calibration_data`` / ``eval_data``: see :func:`build_variant` (recipes that calibrate only)."""
    spec = str(spec).strip()
    if spec.startswith(ARCH_PREFIX):
        return build_arch_variant(spec, device)
    if spec == "embedded":
        v = _load_teacher("embedded", device)
        v.recipe = "baseline"
        if name:
            v.name = name
        return v
    p = Path(spec).expanduser()
    if p.is_dir():
        return _load_dir(p, device, name)
    _check_not_a_path(spec, p)
    v, _, _ = build_variant(spec, teacher=teacher, device=device, students_dir=students_dir,
                            calibration_data=calibration_data, eval_data=eval_data)
    if name:
        v.name = name
    return v
