"""``int8-inductor``: the transformer's Linears in int8, compiled by TorchInductor into oneDNN int8 kernels.

Why: ``int8-dynamic`` (``torch.ao`` ``quantize_dynamic``) runs each int8 Linear as its own eager call that
quantizes its input, multiplies and dequantizes, and everything between two Linears (bias, GELU, residual adds,
LayerNorm, attention) stays separate fp32 passes over memory.  The PT2E flow of torchao (``X86InductorQuantizer``)
quantizes the same Linears, per output channel, with dynamically quantized activations (one scale per call, no
calibration), and TorchInductor lowers the graph with weight freezing to oneDNN's int8 GEMMs (VNNI / AMX-INT8),
the quantize and dequantize steps fused with the ops around them.  That fusion, not the int8 arithmetic alone,
is the gain over ``int8-dynamic``; with bf16 around the int8 (``-bf16``) the fp32 passes between the GEMMs shrink
too, and a calibrated (``-static``) graph skips the per-call range computation.  The runner's measured figures
are in docs/runs and the methods README, not here.

Scope: the transformer encoder (positional conv, layers, final LayerNorm) is exported with ``torch.export``
(dynamic batch and length), quantized and compiled; the conv front end, the feature projection and the CTC head
stay as they were, so the recipe chains with ``front-end-bf16`` (``front-end-bf16+int8-inductor``) the way
``int8-dynamic`` does.  Only ``nn.Linear`` is quantized: the positional conv stays fp32 (int8 convs were slower
and cost accuracy in the ONNX Runtime probe, see ``ort.py``).

``int8-inductor-bf16`` (torchao's "int8-mixed-bf16"): the same int8 Linears, with the graph compiled and called
under bf16 autocast, so attention, LayerNorm, GELU and the (de)quantization around the GEMMs run in bf16 (AMX /
AVX512-BF16).  The positional convolution (exported as a channels-last conv2d with merged groups,
:mod:`compress.methods.positional_conv`) stays fp32 inside the graph: oneDNN's bf16 grouped convolution is wrong on
this project's Xeon with AMX (without the guard the teacher's argmax agreed with fp32 on 80 % of frames).  Attention is
exported as two matmuls and a softmax Inductor fuses (:mod:`compress.methods.attention`: ATen's flash kernel gains
nothing from bf16 on a CPU without AMX at this head size); ``int8-inductor-bf16-sdpa`` keeps the kernel, to compare.
``int8-inductor-static`` / ``-static-bf16``: activation ranges calibrated once (torchao's histogram observer, one
scale per tensor) by transcribing 16 train-clean utterances, one at a time, with the observed graph as the encoder;
no per-call range computation.  The audio is chosen by :mod:`compress.methods.calibration` (a seeded draw from
the training split that belongs to the evaluated data, refused if it overlaps it; ``calibration_data`` names
another, ``--calibration-data`` on the command line): for another teacher, give it that teacher's training audio.

Limits, measured: exported with the padding mask (models with a layer-norm front end, like the embedded teacher),
the encoder fails on a batch of one (torch 2.13: an index out of bounds inside the graph's masking code), so there
a batch of one runs as two copies of itself and the first is kept; without a mask (group-norm front ends, like the
paper's large model, which the runner feeds one utterance at a time) a batch of one runs as it is.
Compilation happens here, at build time, outside any timed repeat (``compile_s`` in the variant's info;
``export_s`` and ``calibration_s`` its parts before Inductor).  The quantized graph is compiled by AOTInductor
(weight freezing, dynamic batch and length) into an artefact in the suite's compile cache (:mod:`compress.methods.
int8_artefact`), keyed by the encoder's weights, the options, the library versions, the CPU's instruction set and
the thread count; a later build of the same encoder, in any process, loads it (no export, quantization or
compilation; ``compile_artefact`` "loaded", ``compile_cache`` "warm").  Why: a graph compiled with frozen weights
bypasses Inductor's FX graph and AOTAutograd caches, so ``torch.compile`` traced and lowered it again in every fresh
process (25-37 s for the teacher).  Where the artefact cannot be built, the graph is compiled with ``torch.compile``
in this process (one warning; ``artefact: false`` asks for that).  CPU only (x86: oneDNN), float32 models only;
needs torchao (extra ``torchao``) and a C++ compiler.  Runtime-only: no weights are saved with the variant.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.errors import FootprintError
from core.inference import uses_group_norm
from compress.methods import aoti, attention
from compress.methods.aoti import MAX_FRAMES
from compress.methods.registry import register_method

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'w2v-footprint[torchao]'"


def int8_inductor_missing() -> str:
    """What this machine lacks for int8-inductor ("" when nothing): torchao, a C++ compiler, oneDNN."""
    from compress.methods.compiled import compile_available
    from core.console import quiet_import

    try:
        with quiet_import():  # torchao's import-time log lines (its CUDA .so files, triton): the run log only
            import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a missing or broken torchao makes the recipe unavailable, not an error
        return f"torchao is not installed or does not import ({type(exc).__name__}: {INSTALL_HINT})"
    if not compile_available("cpu"):
        return "no C++ compiler for torch.compile (g++ or $CXX)"
    return "" if torch.backends.mkldnn.is_available() else "this torch build has no oneDNN"


def int8_inductor_available() -> bool:
    return not int8_inductor_missing()


@dataclass
class Int8InductorConfig:
    dynamic: bool = True  # activations quantized per call (no calibration); static: ranges calibrated on audio
    max_frames: int = MAX_FRAMES  # the export's bound on the encoder's length
    mixed_bf16: bool = False  # int8 Linears, the rest (attention, LayerNorm, GELU) in bf16: compiled under autocast
    calibration_data: str | None = None  # static only; None: the training split of the evaluated data
    calibration_utterances: int = 16
    calibration_seed: int = 0
    reduce_range: bool | None = None  # 7-bit int8 ranges; None: where the CPU lacks VNNI/AMX
    eval_data: str | None = None  # filled by the runner: the evaluated set calibration must not overlap
    do_normalize: bool | None = None  # filled from the source variant
    # compile into an AOTInductor artefact kept in the compile cache and loaded by later builds (int8_artefact.py);
    # False: torch.compile in this process, as every build did before
    artefact: bool = True
    # "matmul": attention as two matmuls and a softmax Inductor fuses (compress/methods/attention.py); "sdpa": ATen's
    # flash-attention kernel; None: matmul with bf16 around the int8 (measured faster there), else sdpa
    attention: str | None = None


class Int8InductorEncoder(nn.Module):
    """Stands in for ``Wav2Vec2Encoder``: called the same way, returns the same ``last_hidden_state``.

    It holds the quantized graph (int8 weights, their per-channel scales, the fp32 rest) and, for size and FLOPs
    accounting, a shape-only (meta device) copy of the encoder it replaced: ``layers`` and ``pos_conv_embed``."""

    def __init__(self, graph: nn.Module, compiled: Any, shapes: nn.Module, with_mask: bool,
                 mixed_bf16: bool = False, aoti: bool = False, described: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.graph = graph  # registered: its tensors are the model's state (a loaded artefact: the tensors only)
        self._with_mask = with_mask
        self._mixed_bf16 = mixed_bf16
        self._aoti = aoti  # an AOTInductor package: autocast and the float output are compiled into it
        described = described or describe_graph(graph)
        self.ops: tuple[str, ...] = tuple(described["ops"])  # what the quantized graph calls, in order
        self._per_channel = described["per_channel"]
        # not registered (no second copy of the graph's tensors in the state dict, no parameters of the shapes)
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_shapes", shapes)

    def train(self, mode: bool = True) -> Int8InductorEncoder:
        """Inference only: an exported graph refuses ``train()``/``eval()`` (``model.eval()`` reaches here)."""
        if mode:
            raise FootprintError("int8-inductor: the compiled int8 encoder is for inference only")
        self.training = False
        return self

    @property
    def layers(self) -> nn.ModuleList:
        return self._shapes.layers

    @property
    def pos_conv_embed(self) -> nn.Module:
        return self._shapes.pos_conv_embed

    def footprint_weights(self) -> list[tuple[str, torch.Tensor]]:
        """The int8 weights as per-channel quantized tensors (int8 values + scales), for size accounting."""
        import warnings

        out = []
        for args in self._per_channel:
            w, scale, zero, axis = (_attr(self.graph, a["attr"]) if isinstance(a, dict) else a for a in args)
            with warnings.catch_warnings():  # torch 2.13 deprecates qint8 tensors; here they only count bytes
                warnings.simplefilter("ignore", UserWarning)
                q = torch._make_per_channel_quantized_tensor(w, scale.double(), zero, int(axis))
            out.append((args[0]["attr"], q))
        return out

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False,
                return_dict: bool = True) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        if output_attentions or output_hidden_states:
            raise FootprintError("int8-inductor: the compiled encoder returns the last hidden state only")

        def run(*args: torch.Tensor) -> torch.Tensor:
            if self._aoti:  # autocast and the float output are compiled into the package
                return self._compiled(*args)
            with _inductor_config().patch(freezing=True), _autocast(self._mixed_bf16):
                return self._compiled(*args).float()  # (a recompilation, should one happen, freezes weights too)

        out = aoti.call_encoder(run, hidden_states, attention_mask, self._with_mask, "int8-inductor")
        return BaseModelOutput(last_hidden_state=out) if return_dict else (out,)


def _attr(module: nn.Module, target: str) -> Any:
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _op_name(target: Any) -> str:
    return str(target) if isinstance(target, torch._ops.OpOverload) else getattr(target, "__name__", str(target))


def describe_graph(graph: nn.Module) -> dict[str, Any]:
    """What the encoder keeps of the quantized graph beyond its tensors (JSON: an artefact stores it): the ops it
    calls and, per int8 weight, its dequantize_per_channel arguments (weight, scales, zero points, axis)."""
    nodes = [n for n in graph.graph.nodes if n.op == "call_function"]
    per_channel = [[{"attr": a.target} if isinstance(a, torch.fx.Node) else a for a in n.args[:4]]
                   for n in nodes if "dequantize_per_channel" in str(n.target)]
    return {"ops": [_op_name(n.target) for n in nodes], "per_channel": per_channel}


def _autocast(mixed_bf16: bool) -> Any:
    """The mixed int8/bf16 graph is traced under bf16 autocast and must be called under it (else it recompiles)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed_bf16)


def _in_fp32(op: Any) -> Any:
    """``op`` (an ATen convolution) in fp32 whatever the autocast around it (traced as an autocast-off region)."""
    def conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *conv_args: Any) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            return op(x.float(), weight.float(), None if bias is None else bias.float(), *conv_args)

    conv.__name__ = f"fp32_{op.__name__.split('.')[0]}"
    return conv


_FP32_CONVS = {op: _in_fp32(op) for op in (torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default)}


def _grouped_convs_in_fp32(graph: torch.fx.GraphModule) -> None:
    """The mixed graph is compiled under bf16 autocast, which would run the positional convolution (16 groups;
    exported as a channels-last conv2d, :mod:`compress.methods.positional_conv`) in bf16: on this project's Xeon with
    AMX, oneDNN's bf16 grouped conv is wrong (relative error above 100 %,
    ``compress.methods.quantize.cpu_grouped_conv_bf16_ok``; the eager recipes guard the same conv).  Every grouped
    conv of the graph runs in fp32 instead."""
    for node in graph.graph.nodes:
        groups = node.args[6] if len(node.args) > 6 else 1
        if node.op == "call_function" and node.target in _FP32_CONVS and groups != 1:
            node.target = _FP32_CONVS[node.target]
    graph.recompile()


def _inductor_config() -> Any:
    import torch._inductor.config as inductor_config  # loaded with torch.compile; imported here, not with the package

    return inductor_config


def _calibrate(model: nn.Module, prepared: nn.Module, encoder: nn.Module, with_mask: bool,
               config: Int8InductorConfig) -> None:
    """Static activation ranges: the whole model transcribes the calibration audio, one utterance at a time (no
    padding in the ranges), with the observed graph standing in for its encoder."""
    from core.inference import Transcriber
    from compress.methods.calibration import calibrate_audio_for

    audios = calibrate_audio_for(config, model)
    model.wav2vec2.encoder = Int8InductorEncoder(prepared, prepared, encoder, with_mask)
    try:
        do_norm = True if config.do_normalize is None else config.do_normalize
        Transcriber(model, do_normalize=do_norm, device="cpu", batch_size=1, length_buckets=()).transcribe(audios)
    finally:
        model.wav2vec2.encoder = encoder
    log.info("int8-inductor: activations calibrated on %d utterances of %s", len(audios), config.calibration_data)


def _drop_unused_tensors(gm: nn.Module) -> None:
    """The converted graph still holds the fp32 Linear weights it no longer reads: drop them (size, memory)."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for name, _ in list(gm.named_parameters()) + list(gm.named_buffers()):
        if name not in used:
            owner_name, _, attr = name.rpartition(".")
            owner = gm.get_submodule(owner_name) if owner_name else gm
            delattr(owner, attr)


def _check_model(model: Any) -> nn.Module:
    from compress.methods.quantize import autocast_dtype, quantized_modules

    encoder = getattr(getattr(model, "wav2vec2", None), "encoder", None)
    if encoder is None:
        raise FootprintError(f"int8-inductor: expected a Wav2Vec2ForCTC model, got {type(model).__name__}")
    if isinstance(encoder, Int8InductorEncoder):
        raise FootprintError("int8-inductor: the encoder is int8 already")
    if quantized_modules(model):
        raise FootprintError("int8-inductor: the model has int8-dynamic/static Linears already; use one int8 recipe")
    if autocast_dtype(model) or any(p.dtype != torch.float32 for p in encoder.parameters()):
        raise FootprintError("int8-inductor: quantizes a float32 encoder, not a bf16/fp16 or autocast one")
    compiled = getattr(model, "_footprint_compiled", None)
    if compiled and compiled != "front-end":
        raise FootprintError(f"int8-inductor: the model's {compiled} is compiled already; int8-inductor compiles "
                             "the encoder itself")
    if next(encoder.parameters()).device.type != "cpu":
        raise FootprintError("int8-inductor: x86 CPU only (oneDNN int8 kernels); on a GPU use bf16 or fp16")
    return encoder


def _register(name: str, description: str, **options: Any) -> Any:
    """The four forms share the handler and what they need; they differ in their options."""
    return register_method(name, Int8InductorConfig, runtime_only=True, compiles=True,
                           available=int8_inductor_available, missing=int8_inductor_missing, devices=("cpu",),
                           extra="torchao", options=options, description=description)


@_register("int8-inductor", "the encoder's Linears int8 (per channel, dynamic activations) via torchao PT2E, "
           "compiled by Inductor to oneDNN int8 kernels; chains with front-end-bf16; compiled when built, only with "
           "the `torchao` extra and a C++ compiler")
@_register("int8-inductor-bf16", "int8-inductor with everything but the int8 Linears in bf16 (torchao's "
           "int8-mixed-bf16: compiled and run under bf16 autocast; CPUs with AVX512-BF16/AMX), attention as two "
           "matmuls and a fused softmax", mixed_bf16=True)
@_register("int8-inductor-bf16-sdpa", "int8-inductor-bf16 with ATen's flash-attention kernel instead of two "
           "matmuls and a fused softmax: to compare", mixed_bf16=True, attention="sdpa")
@_register("int8-inductor-static", "int8-inductor with activation ranges calibrated on train-clean audio (static, "
           "per tensor) instead of measured per call", dynamic=False)
@_register("int8-inductor-static-bf16", "int8-inductor-static with the rest of the encoder in bf16 (attention as in "
           "int8-inductor-bf16)", dynamic=False, mixed_bf16=True)
def apply_int8_inductor(model: nn.Module, config: Int8InductorConfig) -> nn.Module:
    if not int8_inductor_available():
        raise FootprintError(f"int8-inductor: needs torchao's PT2E quantizer and a C++ compiler ({INSTALL_HINT})")
    encoder = _check_model(model)
    from compress.methods.quantize import cpu_has_int8_dot_product, resolve_reduce_range

    config = resolve_reduce_range(config)  # before the artefact's key, which covers it
    config.attention = attention.resolve(config.attention, config.mixed_bf16, "int8-inductor")  # before the key
    if not cpu_has_int8_dot_product():
        log.warning("int8-inductor: this CPU has no VNNI/AMX: oneDNN's int8 GEMMs may be slower than fp32 here "
                    "(compress/methods/README.md, int8 compiled by Inductor)")
    if config.mixed_bf16:
        from compress.methods.quantize import cpu_has_native_bf16

        if not cpu_has_native_bf16():
            log.warning("int8-inductor-bf16: this CPU has no native bf16 (AVX512-BF16/AMX): bf16 is emulated and "
                        "slow here; int8-inductor keeps the rest in fp32")
    model.eval()
    with_mask = not uses_group_norm(model)
    t0 = time.perf_counter()
    example, shapes = aoti.encoder_example(model.config.hidden_size, with_mask, max_frames=config.max_frames)
    loaded = _load_artefact(model, encoder, config, with_mask) if config.artefact else None
    if loaded is not None:
        graph, compiled, described, artefact = loaded
        cache_label = "warm"
    else:
        graph = _quantize(model, encoder, config, example, shapes, with_mask, t0)
        described = describe_graph(graph)
        compiled, artefact, cache_label = _compile(model, graph, described, config, example, shapes, with_mask)
    with torch.device("meta"):
        shape_copy = copy.deepcopy(encoder).to("meta")
    model.wav2vec2.encoder = Int8InductorEncoder(graph, compiled, shape_copy, with_mask, config.mixed_bf16,
                                                 aoti=artefact is not None, described=described)
    model.wav2vec2.encoder.artefact = artefact  # the folder it was loaded from (or built into); None: torch.compile
    model._footprint_compiled = ("encoder int8" + ("" if config.dynamic else " (static)")
                                 + (" + bf16" if config.mixed_bf16 else "") + " (torchao PT2E, x86 Inductor)")
    model._footprint_attention = config.attention
    model._footprint_compile_s = time.perf_counter() - t0
    model._footprint_compile_cache = cache_label
    model._footprint_quantized_engine = "onednn (Inductor)"
    model._footprint_int8_reduce_range = config.reduce_range
    if config.mixed_bf16:
        model._footprint_encoder_autocast = "bfloat16"  # the compute dtype the variant's row names
    if artefact is not None:
        model._footprint_runtime = "AOTInductor"
    log.info("int8-inductor: encoder ready in %.1f s (AOTInductor artefact %s, compile cache %s)",
             model._footprint_compile_s, getattr(model, "_footprint_artefact", "off"), cache_label or "unused")
    return model


def _load_artefact(model: nn.Module, encoder: nn.Module, config: Int8InductorConfig,
                   with_mask: bool) -> tuple[nn.Module, Any, dict[str, Any], Any] | None:
    """The compiled encoder from its artefact, when one was built for this encoder, machine and version; None (and
    a one-line warning where one exists but cannot be used) otherwise."""
    from compress.methods import int8_artefact

    t0 = time.perf_counter()
    key, parts = int8_artefact.key_for(encoder, model.config, config, with_mask)
    model._footprint_artefact_key = (key, parts)
    folder = aoti.find(key)
    if folder is None:
        return None
    try:
        tensors, compiled, described, meta = int8_artefact.load(folder, parts)
    except aoti.ArtefactError as exc:
        log.warning("int8-inductor: compiled artefact not used, building it again: %s", exc)
        return None
    model._footprint_artefact = "loaded"
    if meta.get("calibration_data"):  # the audio its static ranges came from, as a build would record it
        model._footprint_calibration_data = config.calibration_data = meta["calibration_data"]
    model._footprint_artefact_load_s = time.perf_counter() - t0
    log.debug("int8-inductor: artefact %s loaded (%.2f s, package %.2f s)", folder, model._footprint_artefact_load_s,
              meta["load_package_s"])
    return tensors, compiled, described, folder


def _quantize(model: nn.Module, encoder: nn.Module, config: Int8InductorConfig, example: tuple[torch.Tensor, ...],
              shapes: tuple[dict[int, Any], ...], with_mask: bool, t0: float) -> torch.fx.GraphModule:
    """Export the encoder and quantize its Linears (torchao PT2E): the int8 graph, not compiled yet."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = xiq.X86InductorQuantizer()
    # reduce_range: 7-bit activations, as torchao's docs advise "on earlier CPUs without VNNI"
    quantizer.set_module_type_qconfig(nn.Linear, xiq.get_default_x86_inductor_quantization_config(
        is_dynamic=config.dynamic, reduce_range=bool(config.reduce_range)))
    with torch.no_grad():
        # the encoder itself, not a copy: export and quantization leave it as it was (it is replaced below)
        exported = aoti.export_encoder(encoder, model.config, example, shapes, config.attention).module()
        model._footprint_export_s = time.perf_counter() - t0
        prepared = prepare_pt2e(exported, quantizer)
        if config.dynamic:
            prepared(*example)  # observers see one batch (the weights' ranges; activations are dynamic)
        else:
            t_cal = time.perf_counter()
            _calibrate(model, prepared, encoder, with_mask, config)
            model._footprint_calibration_s = time.perf_counter() - t_cal
        graph = convert_pt2e(prepared)
    _drop_unused_tensors(graph)
    if config.mixed_bf16:
        _grouped_convs_in_fp32(graph)
    return graph


def _compile(model: nn.Module, graph: torch.fx.GraphModule, described: dict[str, Any], config: Int8InductorConfig,
             example: tuple[torch.Tensor, ...], shapes: tuple[dict[int, Any], ...],
             with_mask: bool) -> tuple[Any, Any, str]:
    """(the compiled graph, its artefact folder or None, the compile cache's label): an AOTInductor artefact built
    and loaded, or, where that is off or fails, ``torch.compile`` with frozen weights in this process."""
    from compress.methods import int8_artefact
    from compress.methods.compile_cache import CacheProbe

    if config.artefact:
        key, parts = model._footprint_artefact_key
        t0 = time.perf_counter()
        try:
            with CacheProbe():
                folder = int8_artefact.build(key, parts, graph, described, example, shapes, config.mixed_bf16,
                                             getattr(model, "_footprint_calibration_data", "") or "")
            model._footprint_artefact_build_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            _, compiled, _, _ = int8_artefact.load(folder, parts)
            model._footprint_artefact_load_s = time.perf_counter() - t1
            model._footprint_artefact = "built"
            return compiled, folder, "cold"
        except Exception as exc:  # noqa: BLE001 - any failure (export, C++ build, load): compile in this process
            log.warning("int8-inductor: AOTInductor artefact failed (%s: %s); compiling with torch.compile",
                        type(exc).__name__, aoti.first_line(exc)[:300])
            model._footprint_artefact = "failed"
    compiled = torch.compile(graph, dynamic=True)
    with _inductor_config().patch(freezing=True), torch.inference_mode(), _autocast(config.mixed_bf16), \
            CacheProbe() as probe:
        # compiled here, outside any timed repeat: a batch of one is a graph of its own (Inductor specialises
        # sizes 0 and 1); with a mask it never reaches the graph (see above)
        hidden = example[0].shape[-1]
        for b, t in ((2, 65), (3, 104)) + (() if with_mask else ((1, 83),)):
            compiled(torch.zeros(b, t, hidden), *((torch.ones(b, t, dtype=torch.bool),) if with_mask else ()))
    return compiled, None, probe.label
