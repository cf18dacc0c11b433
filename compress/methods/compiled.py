"""``compile``: the model's modules compiled by ``torch.compile`` (TorchInductor), weights unchanged.

Why: on a CPU the conv front end, not the transformer, is most of the time of a small wav2vec 2.0 (embedded
teacher, 2 threads, batch 8 x 10 s: front end 0.39 s of 0.76 s), and int8 leaves it untouched.  Its cost is
memory traffic as much as arithmetic: every conv block is conv -> transpose -> LayerNorm -> transpose -> GELU
over 16-32 k frames per second of audio.  Inductor fuses the norm, transposes and activation into one pass;
measured here (1 thread, 4 x 8 s, busy machine): front end 0.25 -> 0.11 s with static shapes, logits within
1.5e-5 of eager.

``compile-bf16``: the same with the front end under bf16 autocast (its convs are plain, not grouped, so the
CPU guard of ``bf16-autocast`` does not apply): front end 0.157 -> 0.119 s in the same probe, features within
0.5 % (relative L2) of fp32.

``scope``: ``front-end`` (default) compiles the feature extractor only, so it chains with anything that changes
the transformer (``int8-dynamic+compile``: the dynamically quantized Linears stay eager); ``model`` compiles the
whole forward pass (float models); ``encoder`` (recipe ``compile-encoder``) compiles the transformer only, so it
chains after the channels-last front end: ``bf16+front-end-bf16+compile-encoder``.  Inductor fuses what the bf16
encoder spends a third of its time on, one memory pass each: bias + GELU, residual add + LayerNorm (measured on
embedded dev-clean, 2 threads, 4 interleaved passes: ``bf16+front-end-bf16`` x2.56 over fp32, with the encoder
compiled x2.91; compiling it took ~60 s).  ``dynamic=True``: utterance lengths vary, one graph serves them all instead
of one compilation per length.  Compilation runs here, at build time, on two dummy lengths, so its cost is
``compile_s`` in the variant's info and not part of any timed repeat.  Needs a C++ compiler on CPU (Inductor
generates C++); runtime-only: no weights are saved, ``compile`` is redone wherever the recipe is named, but what
Inductor compiled is kept in the suite's persistent compile cache (:func:`use_compile_cache`), so a second build
of the same graph (the runner's memory child, a later run, a deployer's ``load_variant``) loads it instead of
compiling it: ``compile_cache`` in the variant's info says "cold" (something was compiled) or "warm" (all loaded).
Dynamo guards on the thread count too: a graph cached at one ``torch.set_num_threads`` is compiled again at another.
Those caches keep Inductor's output, not Dynamo's trace, so ``compile-encoder`` on a CPU goes further: the encoder is
exported and compiled by AOTInductor into an artefact that later builds load (:mod:`compress.methods.encoder_artefact`;
``runtime`` "AOTInductor (encoder)"); ``artefact: false``, a ``mode`` or an autocast model compile it as above.
A bf16 encoder's artefact writes attention as two matmuls and a fused softmax (:mod:`compress.methods.attention`;
``runtime`` says "attention as matmuls"); ``compile-encoder-sdpa`` keeps ATen's kernel, to compare.
"""
from __future__ import annotations

import logging
import time
import types
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import FootprintError
from core.inference import uses_group_norm
from compress.methods import attention
from compress.methods.maxpool import MaxPoolFeatureLayer
from compress.methods.compile_cache import (CACHE_ENV, CacheProbe, compile_available, compile_cache_dir,  # noqa: F401
                                            compile_missing, use_compile_cache)
from compress.methods.registry import register_method

log = logging.getLogger(__name__)

SCOPES = ("front-end", "model", "encoder")

# Dynamo keeps its cache of compiled graphs on the Python code object of the function it compiles, shared by every
# model whose forward is that function, and runs eager, with one warning, once that cache holds ``recompile_limit``
# (8) graphs.  A benchmark compiles several variants in one process, so a shared budget would run out and later
# variants would run eager while reported as compiled.  So each compiled model gets a forward of its own code object
# (its own cache and limit), and a front end that recompiles for every length is refused.

def _own_class(module: nn.Module, mixin: type | None = None, prefix: str = "Bf16") -> None:
    """Give ``module`` a class of its own (``mixin`` first in its bases, if any, the class named ``prefix`` + the
    original) whose ``forward`` is a copy of the inherited one on a new code object: same behaviour, its own Dynamo
    cache."""
    cls = type(module)
    bases = (mixin, cls) if mixin else (cls,)
    fwd = bases[0].forward
    own = types.FunctionType(fwd.__code__.replace(), fwd.__globals__, fwd.__name__, fwd.__defaults__,
                             fwd.__closure__)
    own.__kwdefaults__, own.__qualname__ = fwd.__kwdefaults__, fwd.__qualname__
    name = f"{prefix}{cls.__name__}" if mixin else cls.__name__
    module.__class__ = type(name, bases, {"forward": own, "__module__": cls.__module__})


@dataclass
class CompileConfig:
    scope: str = "front-end"  # front-end | model | encoder
    mode: str | None = None  # torch.compile mode: None (default) | max-autotune-no-cudagraphs | ...
    dynamic: bool = True
    # front end only: run it under this autocast dtype (bfloat16), its output cast back to fp32 for what follows
    autocast: str | None = None
    # encoder scope on CPU: an AOTInductor artefact in the compile cache, loaded by later builds (encoder_artefact.py);
    # False (or a mode, or an autocast model): torch.compile in this process
    artefact: bool = True
    # the artefact's weights frozen into it: oneDNN's prepacked GEMMs with bias and GELU fused (encoder_artefact.py)
    freezing: bool = True
    # the artefact's attention (compress/methods/attention.py): "matmul" | "sdpa"; None: matmul for a bf16 encoder
    # (measured faster on CPUs without AMX), else sdpa
    attention: str | None = None


class _AutocastFrontEnd:
    """Mixed into the feature extractor's class: its forward under bf16 autocast, fp32 out (so int8 or fp32
    layers after it see what they always saw)."""

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        with torch.autocast(input_values.device.type, dtype=torch.bfloat16):
            out = super().forward(input_values)
        return out.float()


def compiled_info(model: nn.Module) -> dict[str, object]:
    """``runtime``, ``compile_s`` and ``compile_cache`` of a model this recipe, int8-inductor or front-end-compiled
    compiled (empty otherwise; the seconds of both where the front end and the encoder were compiled); for an
    AOTInductor artefact, ``compile_artefact`` (built | loaded | failed: compiled in process) and the seconds
    building and loading it took."""
    scope = getattr(model, "_footprint_compiled", None)
    front_end = getattr(model, "_footprint_front_end_artefact", None)  # front-end-compiled: built | loaded | failed
    if scope is None and front_end is None:
        return {}
    info: dict[str, object] = {}
    if scope is not None:
        matmuls = ", attention as matmuls" if getattr(model, "_footprint_attention", None) == "matmul" else ""
        runtime = getattr(model, "_footprint_runtime", "torch.compile")
        info.update({"runtime": f"{runtime} ({scope}{matmuls})", "compile_s": round(model._footprint_compile_s, 2),
                     "compile_cache": getattr(model, "_footprint_compile_cache", "")})
        artefact = getattr(model, "_footprint_artefact", None)  # an AOTInductor artefact (aoti.py): built | loaded
        if artefact:
            info["compile_artefact"] = artefact
            for key in ("artefact_build_s", "artefact_load_s"):
                if getattr(model, f"_footprint_{key}", None) is not None:
                    info[key] = round(float(getattr(model, f"_footprint_{key}")), 2)
    if front_end and front_end != "failed":
        seconds = float(getattr(model, "_footprint_front_end_compile_s", 0.0))
        runtime = "AOTInductor (front-end windows)"
        info["runtime"] = f"{info['runtime']} + {runtime}" if "runtime" in info else runtime
        info["compile_s"] = round(float(info.get("compile_s", 0.0)) + seconds, 2)
        labels = {str(info.get("compile_cache", "")), getattr(model, "_footprint_front_end_compile_cache", "")}
        info["compile_cache"] = next((label for label in ("cold", "warm") if label in labels), "")
    if front_end:
        info["front_end_artefact"] = front_end
    return info


def one_time_info(model: nn.Module, record: dict[str, object] | None = None) -> dict[str, object]:
    """What building the variant cost once, beside what running it costs: the keys every variant's info has
    (``compile_cache``, ``calibration_data``, ``length_buckets``: "" when none) and the seconds that were spent
    (``calibration_s``, ``export_s``: only when spent here; a saved variant was calibrated when it was saved)."""
    record = record or {}
    info: dict[str, object] = {
        "compile_cache": getattr(model, "_footprint_compile_cache", ""),
        "calibration_data": getattr(model, "_footprint_calibration_data", None) or record.get("calibration_data", ""),
        "length_buckets": length_buckets_label(getattr(model, "_footprint_length_buckets", None)),
    }
    for key in ("calibration_s", "export_s"):
        seconds = getattr(model, f"_footprint_{key}", None)
        if seconds is not None:
            info[key] = round(float(seconds), 2)
    return info


def length_buckets_label(buckets: object) -> str:
    """A short label of a model's length buckets: "0.5s" for a 0.5 s step, "" for none."""
    from core.inference import LengthBuckets

    return buckets.label() if isinstance(buckets, LengthBuckets) else ""


@register_method("compile-encoder", CompileConfig, runtime_only=True, compiles=True, available=compile_available,
                 missing=compile_missing, options={"scope": "encoder"},
                 description="compile the transformer encoder only (float models; chains after front-end-bf16, "
                             "e.g. bf16+front-end-bf16+compile-encoder); compiled when built, on CPU into an "
                             "AOTInductor artefact that later builds load")
@register_method("compile-encoder-sdpa", CompileConfig, runtime_only=True, compiles=True,
                 available=compile_available, missing=compile_missing,
                 options={"scope": "encoder", "attention": "sdpa"},
                 description="compile-encoder with ATen's flash-attention kernel in the artefact, whatever the dtype: "
                             "to compare")
@register_method("compile-bf16", CompileConfig, runtime_only=True, compiles=True, available=compile_available,
                 missing=compile_missing, options={"autocast": "bfloat16"},
                 description="compile, with the conv front end under bf16 autocast (CPUs with AVX512-BF16/AMX, GPUs); "
                             "the transformer as it was (fp32 or int8)")
@register_method("compile", CompileConfig, runtime_only=True, compiles=True, available=compile_available,
                 missing=compile_missing,
                 description="torch.compile (Inductor) of the conv front end (scope front-end, chains after int8) "
                             "or of the whole model; weights unchanged, compiled when built; needs a C++ compiler "
                             "on CPU")
def apply_compile(model: nn.Module, config: CompileConfig) -> nn.Module:
    if config.scope not in SCOPES:
        raise FootprintError(f"compile: unknown scope {config.scope!r} ({' | '.join(SCOPES)})")
    done = getattr(model, "_footprint_compiled", None)
    if done == config.scope + (" bf16" if config.autocast else ""):
        return model
    if done:
        raise FootprintError(f"compile: the model's {done} is compiled already; one compile stage per model")
    from compress.methods.quantize import quantized_modules

    if config.scope != "front-end" and quantized_modules(model):
        raise FootprintError(f"compile: scope {config.scope!r} needs a float model; use the default scope front-end "
                             "after int8-dynamic")
    if config.autocast not in (None, "bfloat16"):
        raise FootprintError(f"compile: autocast must be bfloat16 or unset, not {config.autocast!r}")
    if config.autocast and config.scope != "front-end":
        raise FootprintError("compile: autocast applies to the front-end scope; for the whole model use "
                             "bf16-autocast+compile")
    from compress.methods.front_end import front_end_dtype

    if front_end_dtype(model) and config.scope != "encoder":
        # the channels-last bf16 front end runs oneDNN's fused convs already; compiling it on top gains little
        raise FootprintError("compile: the front end already runs channels-last (front-end-bf16); use one of the "
                             "two, or compile-encoder after it")
    targets = {"front-end": model.wav2vec2.feature_extractor, "encoder": model.wav2vec2.encoder, "model": model}
    target = targets[config.scope]
    if any(isinstance(m, MaxPoolFeatureLayer) for m in target.modules()):
        # measured: torch 2.13 specialises max_pool1d's output length, one graph per audio length
        raise FootprintError("compile: a max-pool front end is recompiled for every audio length (torch "
                             f"{torch.__version__.split('+')[0]} specialises max_pool1d sizes); run it eager")
    if config.autocast:
        from compress.methods.quantize import cpu_has_native_bf16

        if not cpu_has_native_bf16() and not torch.cuda.is_available():
            log.warning("compile-bf16: this CPU has no native bf16 (AVX512-BF16/AMX): slower than fp32 here")
    model.eval()
    t0 = time.perf_counter()
    label = _compile_encoder_artefact(model, target, config) if config.scope == "encoder" else None
    if label is None:
        label = _torch_compile(model, target, config)
    model._footprint_compiled = config.scope + (" bf16" if config.autocast else "")
    model._footprint_compile_s = time.perf_counter() - t0
    model._footprint_compile_cache = label
    log.info("compile: %s compiled in %.1f s (%scompile cache %s)", config.scope, model._footprint_compile_s,
             f"AOTInductor artefact {model._footprint_artefact}, " if getattr(model, "_footprint_artefact", None)
             else "", label or "unused")
    return model


def _compile_encoder_artefact(model: nn.Module, encoder: nn.Module, config: CompileConfig) -> str | None:
    """The encoder from its AOTInductor artefact (compress/methods/encoder_artefact.py): the compile cache's label,
    or None where the artefact does not apply (off, a mode, autocast, not a CPU) or failed (one warning)."""
    from compress.methods.quantize import autocast_dtype

    if not config.artefact or config.mode or autocast_dtype(model) \
            or next(encoder.parameters()).device.type != "cpu":
        return None
    from compress.methods import aoti, encoder_artefact

    with_mask = not uses_group_norm(model)
    implementation = attention.resolve(config.attention, next(encoder.parameters()).dtype == torch.bfloat16,
                                       "compile-encoder")
    try:
        package, state, label = encoder_artefact.compile_encoder(model, encoder, with_mask, config.freezing,
                                                                 implementation)
    except Exception as exc:  # noqa: BLE001 - any failure (export, C++ build, load): compile in this process
        log.warning("compile-encoder: AOTInductor artefact failed (%s: %s); compiling with torch.compile",
                    type(exc).__name__, aoti.first_line(exc)[:300])
        model._footprint_artefact = "failed"
        return None
    _own_class(encoder, encoder_artefact.ArtefactForward, prefix="Aoti")
    object.__setattr__(encoder, "_footprint_aoti", package)  # not a submodule: no state, no parameters
    encoder._footprint_aoti_mask = with_mask
    model._footprint_artefact, model._footprint_runtime = state, "AOTInductor"
    model._footprint_attention = implementation
    return label


def _torch_compile(model: nn.Module, target: nn.Module, config: CompileConfig) -> str:
    """``torch.compile`` of ``target`` in place, compiled here on two dummy inputs; the compile cache's label."""
    _own_class(target, _AutocastFrontEnd if config.autocast else None)
    target.compile(dynamic=config.dynamic, mode=config.mode)  # in place: state_dict names stay as they were
    device = next(model.parameters()).device
    # Two shapes (batch >= 2 and batch 1 are separate graphs), made as the runner makes its inputs: outside
    # inference mode (an inference tensor has other dispatch keys: one more graph at the first real batch), with
    # the attention mask a layer-norm extractor gets.
    dummies = [torch.zeros(batch, int(seconds * 16000), device=device) for batch, seconds in ((2, 1.3), (1, 2.1))]
    masks = [None if uses_group_norm(model) else torch.ones_like(x, dtype=torch.long) for x in dummies]
    with CacheProbe() as probe, torch.inference_mode():
        for x, mask in zip(dummies, masks):
            model(x, attention_mask=mask)
    return probe.label
