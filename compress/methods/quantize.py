"""Quantization recipes: ``int8-dynamic`` (the paper's, done right), ``int8-static`` (beyond the paper),
``fp16`` (GPU) / ``bf16`` (GPU, CPUs with native bf16) and ``int8-weight-only-torchao`` (GPU, optional extra).

int8-dynamic
    Every ``nn.Linear`` - the attention q/k/v/out projections included, and the feature projection and CTC head -
    gets int8 weights and dynamically quantized activations.  The paper's code turned the attention projections
    back into fp32 for inference (its section 5.2), which is why it saw only ~8 % CPU speed-up.  The conv front
    end and the positional conv stay fp32 (PyTorch has no dynamic int8 Conv1d).  Weights are per-tensor by
    default (as ``quantize_dynamic``'s default, what the paper used); ``per_channel`` gives one scale per
    output row.

    It uses ``torch.ao.quantization.quantize_dynamic``: deprecated in torch 2.x in favour of torchao, but still
    working in torch 2.13, and - unlike torchao's int8 dynamic path, which is 5-14x *slower* than fp32 on this
    AVX2 CPU without VNNI - it has fast fbgemm/x86 int8 kernels.  The call lives in :func:`_quantize_dynamic`
    only; loading a saved variant builds the quantized modules directly from the stored int8 tensors.

int8-static (beyond the paper)
    Each ``nn.Linear`` as quantize -> int8 Linear -> dequantize, activation ranges calibrated on training audio
    (:mod:`.calibration`); everything between two Linears in fp32: the paper's section 5.1 workaround, applied at
    every Linear.  The requantized outputs cost accuracy against dynamic quantization; the runner reports it.

fp16 / bf16
    Every floating tensor cast; fp16 is meant for GPU inference (CPU fp16 kernels are slow or missing).  bf16 also
    runs on CPUs with AVX512-BF16/AMX: half the size, and no per-call weight casts as under ``bf16-autocast``;
    chain ``front-end-bf16`` after it for the fast conv layout (``bf16+front-end-bf16``).

bf16-autocast (beyond the paper)
    Weights stay fp32 (the size does not change); the forward pass runs under ``torch.autocast`` in bfloat16, so
    matmuls and convolutions use bf16 kernels while layer norms, softmax and the loss-sensitive reductions stay
    fp32; attention keeps the model's implementation (SDPA; see :class:`AutocastConfig`).  It pays on CPUs with
    native bf16 (AVX512-BF16 or AMX) and on GPUs; elsewhere it is emulated and slow, and says so.  It changes
    how the model runs, not its weights: nothing to save, it is applied wherever the recipe is named.

int8-weight-only-torchao
    ``torchao.quantization.quantize_(model, Int8WeightOnlyConfig())`` when torchao is installed (extra
    ``torchao``).  torchao's tensor subclasses do not serialise to plain safetensors, so the variant stores the
    fp32 weights and re-applies the (deterministic) quantization on load: its size on disk is the fp32 size,
    its memory size the int8 one.  Not a CPU default (see above).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.errors import FootprintError
from compress.methods.registry import register_method

log = logging.getLogger(__name__)

_warned_deprecated = False


# ----------------------------------------------------------------------------------------------- configs
@dataclass
class Int8DynamicConfig:
    per_channel: bool = False  # False: one scale per weight tensor (quantize_dynamic's default, the paper's)
    # torch's quantized engine the int8 weights are packed for (x86 | fbgemm | onednn): it picks the kernels; which
    # is fastest depends on the CPU (tools/quant_engine_probe.py measures them), x86 was on this project's.
    engine: str = "x86"


@dataclass
class Int8StaticConfig:
    calibration_data: str | None = None  # None: the training split of the evaluated data (never the test set)
    calibration_utterances: int = 16
    observer: str = "histogram"  # histogram (clips outliers; PyTorch's default for x86) | minmax
    per_channel: bool = True
    calibration_seed: int = 0
    do_normalize: bool | None = None  # filled from the source variant
    eval_data: str | None = None  # filled by the runner: the evaluated set calibration must not overlap


@dataclass
class HalfConfig:
    dtype: str = "float16"  # float16 | bfloat16


@dataclass
class AutocastConfig:
    dtype: str = "bfloat16"
    # The attention implementation on CPU; "" keeps the model's own (transformers' SDPA, PyTorch's fused CPU
    # flash-attention kernel): under bf16 autocast eager attention computes softmax, scaling and the mask add over
    # the (batch, heads, frames, frames) scores in fp32 (autocast's softmax policy), SDPA fuses them.  The runner
    # measures both (``bf16-autocast-eager`` keeps eager attention); the figures are in docs/runs.
    cpu_attention: str = ""


@dataclass
class TorchaoInt8WeightOnlyConfig:
    pass


# ----------------------------------------------------------------------------------------------- helpers
def linear_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _no_grad_float(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if any(p.is_floating_point() and p.dtype != torch.float32 for p in model.parameters()):
        model.float()
    return model


def _reject_quantized(model: nn.Module, what: str) -> None:
    from core.model_stats import _is_dynamic_qlinear, _is_static_qlinear

    if any(_is_dynamic_qlinear(m) or _is_static_qlinear(m) for m in model.modules()):
        raise FootprintError(f"{what}: the model is already int8-quantized; apply {what} to a float model")
    if autocast_dtype(model):  # int8 kernels take no bf16 activations
        raise FootprintError(f"{what}: the model already runs under {autocast_dtype(model)} autocast; "
                             "put bf16-autocast last, on a float model")


# ----------------------------------------------------------------------------------------------- int8 dynamic
def _quantize_dynamic(model: nn.Module, names: list[str], per_channel: bool, engine: str | None = None
                      ) -> nn.Module:
    """The project's one call to ``torch.ao.quantization.quantize_dynamic`` (deprecated, working in torch 2.13)."""
    global _warned_deprecated
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    if not _warned_deprecated:
        log.info("int8-dynamic uses torch.ao.quantization.quantize_dynamic: deprecated in favour of torchao, "
                 "still working in torch %s and the fast int8 path on CPUs without VNNI", torch.__version__)
        _warned_deprecated = True
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings(), quantized_engine(engine):
        warnings.simplefilter("ignore")  # the deprecation notice (logged once above) and per-call warnings
        model = quantize_dynamic(model, {n: qconfig for n in names}, dtype=torch.qint8, inplace=True)
    model._footprint_quantized_engine = engine or torch.backends.quantized.engine
    return model


@contextlib.contextmanager
def quantized_engine(engine: str | None):
    """Pack int8 weights for ``engine`` (the packed weights then run its kernels whatever the global engine
    is later); the process-wide ``torch.backends.quantized.engine`` is restored afterwards."""
    old = torch.backends.quantized.engine
    if engine and engine not in torch.backends.quantized.supported_engines:
        raise FootprintError(f"int8: quantized engine {engine!r} is not supported by this torch "
                             f"({', '.join(e for e in torch.backends.quantized.supported_engines if e != 'none')})")
    try:
        if engine:
            torch.backends.quantized.engine = engine
        yield
    finally:
        torch.backends.quantized.engine = old


@register_method("int8-dynamic", Int8DynamicConfig, devices=("cpu",), quantized_int8=True, command="quantize",
                 description="every `nn.Linear` int8, attention projections included")
def apply_int8_dynamic(model: nn.Module, config: Int8DynamicConfig) -> nn.Module:
    _reject_quantized(model, "int8-dynamic")
    model = _no_grad_float(model.cpu())
    names = linear_names(model)
    model = _quantize_dynamic(model, names, config.per_channel, config.engine)
    log.info("int8-dynamic: %d Linear layers quantized (attention projections included)", len(names))
    return model


# ----------------------------------------------------------------------------------------------- int8 static
class StaticQuantLinear(nn.Module):
    """quantize -> Linear -> dequantize: an int8 Linear inside an otherwise fp32 model (section 5.1 workaround)."""

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant = QuantStub()
        self.linear = linear
        self.dequant = DeQuantStub()
        # no in_features/out_features here: FLOP counters find them on the inner Linear (counted once)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.linear(self.quant(x)))


def _static_qconfig(config: Int8StaticConfig):
    from torch.ao.quantization import (
        HistogramObserver,
        MinMaxObserver,
        PerChannelMinMaxObserver,
        QConfig,
    )

    act_cls = HistogramObserver if config.observer == "histogram" else MinMaxObserver
    # reduce_range keeps the x86/fbgemm int8 matmul free of 16-bit overflow on CPUs without VNNI.
    act = act_cls.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=True)
    weight = (PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
              if config.per_channel else MinMaxObserver.with_args(dtype=torch.qint8,
                                                                    qscheme=torch.per_tensor_symmetric))
    return QConfig(activation=act, weight=weight)


@register_method("int8-static", Int8StaticConfig, devices=("cpu",), quantized_int8=True, command="quantize",
                 description="every `nn.Linear` int8 with calibrated activations, fp32 between "
                             "(section 5.1 workaround)")
def apply_int8_static(model: nn.Module, config: Int8StaticConfig) -> nn.Module:
    from torch.ao.quantization import convert, prepare

    from core.inference import Transcriber

    import time

    from compress.methods.calibration import calibrate_audio_for

    _reject_quantized(model, "int8-static")
    model = _no_grad_float(model.cpu())
    t0 = time.perf_counter()
    audios = calibrate_audio_for(config, model)  # first: a refused calibration set costs nothing
    qconfig = _static_qconfig(config)
    names = linear_names(model)
    for name in names:
        wrapper = StaticQuantLinear(model.get_submodule(name))
        wrapper.qconfig = qconfig
        _set_module(model, name, wrapper)
    do_norm = True if config.do_normalize is None else config.do_normalize
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare(model, inplace=True)
        # batch 1: no padding in the calibrated ranges
        tr = Transcriber(model, do_normalize=do_norm, device="cpu", batch_size=1, length_buckets=())
        tr.transcribe(audios)
        convert(model, inplace=True)
    model._footprint_calibration_s = time.perf_counter() - t0
    log.info("int8-static: %d Linear layers, activations calibrated on %d utterances of %s", len(names),
             len(audios), config.calibration_data)
    return model


# ----------------------------------------------------------------------------------------------- half / torchao
@register_method("bf16", HalfConfig, options={"dtype": "bfloat16"}, command="quantize",
                 description="bfloat16 weights and compute (GPUs; CPUs with AVX512-BF16/AMX, where the positional "
                             "conv runs in fp32 if the CPU's bf16 grouped conv is wrong): half the size")
@register_method("fp16", HalfConfig, options={"dtype": "float16"}, devices=("cuda",), command="quantize",
                 description="float16 weights and compute")
def apply_half(model: nn.Module, config: HalfConfig) -> nn.Module:
    if config.dtype not in ("float16", "bfloat16"):
        raise FootprintError(f"half precision: unknown dtype {config.dtype!r} (float16 | bfloat16)")
    _reject_quantized(model, config.dtype)
    model = model.eval().to(getattr(torch, config.dtype))
    if config.dtype == "bfloat16":
        if next(model.parameters()).device.type == "cpu" and not cpu_has_native_bf16():
            log.warning("bf16: this CPU has no native bf16 (AVX512-BF16/AMX): slower than fp32 here")
        guard_bf16_grouped_conv(model)
    return model


class _AutocastForward:
    """Mixin placed before the model's class: ``forward`` runs under autocast on the device of the weights (so
    the variant may be moved after the recipe is applied).  A class, not a patched bound method, so that
    ``copy.deepcopy`` of the model keeps working."""

    _footprint_autocast: str
    _footprint_attention: dict[str, str]  # device type -> attention implementation

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        device = next(self.parameters()).device.type
        attention = self._footprint_attention.get(device, self._footprint_attention["default"])
        if self.config._attn_implementation != attention:  # the config is shared by every attention layer
            self.config._attn_implementation = attention
        with torch.autocast(device, dtype=getattr(torch, self._footprint_autocast)):
            return super().forward(*args, **kwargs)


class _Fp32ConvOnCpu:
    """Mixin for the positional convolution's ``Conv1d`` on a CPU whose bf16 grouped convolution is wrong (see
    :func:`cpu_grouped_conv_bf16_ok`): on CPU, under bf16 autocast (fp32 weights) or with bf16 weights (the ``bf16``
    recipe), it convolves in fp32 - autocast off, weights cast for the call - and returns fp32 under autocast (as
    an fp32 op there does) or the input's dtype otherwise; fp32 without autocast, and other devices, unchanged."""

    def forward(self, x: Any) -> Any:
        autocast = torch.is_autocast_enabled("cpu")
        if x.device.type != "cpu" or (not autocast and self.weight.dtype == torch.float32):
            return super().forward(x)
        with torch.autocast("cpu", enabled=False):
            bias = None if self.bias is None else self.bias.float()
            out = self._conv_forward(x.float(), self.weight.float(), bias)
        return out if autocast else out.to(x.dtype)


@functools.lru_cache(maxsize=None)
def cpu_grouped_conv_bf16_ok() -> bool:
    """Does this CPU's bf16 grouped conv1d agree with fp32?  Measured, not assumed: with torch 2.13 on an Intel
    Xeon with AMX (oneDNN), a bf16 conv1d with groups > 1 (the positional convolution's shape: 192 channels,
    kernel 64, 16 groups) came out with a relative error above 100 % while groups = 1 stayed at 0.3 %, so the
    bf16-autocast teacher would have been another model there (splitting it into 16 ungrouped 12 -> 12 channel convs
    did not help, 108 %; a channels-last conv2d neither).  The probe uses a small shape with the same bug."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 32, 64, generator=gen)
    w = torch.randn(32, 8, 16, generator=gen) * 0.1
    ref = torch.nn.functional.conv1d(x, w, padding=8, groups=4)
    with torch.no_grad():
        low = torch.nn.functional.conv1d(x.bfloat16(), w.bfloat16(), padding=8, groups=4).float()
    return bool(((low - ref).norm() / ref.norm()) < 0.05)


@functools.lru_cache(maxsize=None)
def _warn_bf16_grouped_conv() -> None:
    """Once per process: distillation guards the teacher and the student, a benchmark every bf16 variant."""
    log.warning("bf16: this CPU's bf16 grouped convolution disagrees with fp32 (oneDNN); positional "
                "convolutions run in fp32 on CPU")


def guard_bf16_grouped_conv(model: nn.Module) -> None:
    """Where this CPU's bf16 grouped conv is wrong, the model's positional conv runs in fp32 on CPU, under bf16
    autocast (inference, distillation and teacher training alike) and with bf16 weights; a no-op elsewhere."""
    pos = getattr(getattr(getattr(model, "wav2vec2", None), "encoder", None), "pos_conv_embed", None)
    conv = getattr(pos, "conv", None)
    if not isinstance(conv, nn.Conv1d) or isinstance(conv, _Fp32ConvOnCpu) or cpu_grouped_conv_bf16_ok():
        return
    _warn_bf16_grouped_conv()
    cls = type(conv)
    conv.__class__ = type(f"Fp32OnCpu{cls.__name__}", (_Fp32ConvOnCpu, cls), {"__module__": cls.__module__})


def autocast_dtype(model: Any) -> str | None:
    """The autocast dtype a ``bf16-autocast`` recipe put on ``model`` (None when it runs in its own dtype)."""
    return getattr(model, "_footprint_autocast", None)


def cpu_has_int8_dot_product() -> bool:
    """VNNI (AVX512-VNNI, AVX-VNNI) or AMX-INT8 on x86: int8 products summed in 32 bits.  Without them the x86 int8
    kernels (fbgemm, oneDNN, ONNX Runtime, OpenVINO) multiply u8 x s8 pairs with ``vpmaddubsw``, whose 16-bit
    sums saturate, and each library asks for 7-bit ranges there: torchao's ``reduce_range`` ("set it to True on
    earlier CPUs without VNNI"), ONNX Runtime's ``reduce_range``, NNCF's ``OverflowFix``."""
    caps = torch.cpu.get_capabilities()
    if caps.get("architecture", "x86_64") != "x86_64":
        return True  # the saturation is an x86 instruction's; ARM's int8 dot products sum in 32 bits
    return any(caps.get(k, False) for k in ("avx512_vnni", "avx_vnni", "amx_int8"))


def resolve_reduce_range(config: Any) -> Any:
    """Decide a recipe config's unset ``reduce_range`` (in place, as the runner fills its other context fields):
    7-bit where this CPU has no int8 dot product."""
    if config.reduce_range is None:
        config.reduce_range = not cpu_has_int8_dot_product()
        if config.reduce_range:
            log.info("int8: this CPU has no VNNI/AMX: 7-bit ranges (reduce_range) keep its int8 sums from saturating")
    return config


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@register_method("bf16-autocast-eager", AutocastConfig, runtime_only=True, options={"cpu_attention": "eager"},
                 description="bf16-autocast with eager (unfused) attention on CPU, the earlier default: to compare")
@register_method("bf16-autocast", AutocastConfig, runtime_only=True,
                 description="fp32 weights, forward under bf16 autocast (CPUs with AVX512-BF16/AMX, GPUs); changes "
                             "how the model runs, not its weights, so nothing is saved")
def apply_autocast(model: nn.Module, config: AutocastConfig) -> nn.Module:
    if config.dtype not in ("bfloat16", "float16"):
        raise FootprintError(f"autocast: unknown dtype {config.dtype!r} (bfloat16 | float16)")
    if autocast_dtype(model):
        return model
    _reject_quantized(model, "bf16-autocast")
    if config.dtype == "bfloat16" and not cpu_has_native_bf16():
        log.warning("bf16-autocast: this CPU has no native bf16 (AVX512-BF16/AMX); on CPU it will be slower than "
                    "fp32 (on a GPU it is fine)")
    cls = type(model)
    model.__class__ = type(f"Autocast{cls.__name__}", (_AutocastForward, cls), {"__module__": cls.__module__})
    model._footprint_autocast = config.dtype
    if config.dtype == "bfloat16":
        guard_bf16_grouped_conv(model)
    model._footprint_attention = {"default": model.config._attn_implementation}
    if config.cpu_attention:
        model._footprint_attention["cpu"] = config.cpu_attention
    return model.eval()


def torchao_available() -> bool:
    """Installed: looked up, not imported (importing it logs about its CUDA kernels; int8_inductor.py quiets that)."""
    import importlib.util

    return importlib.util.find_spec("torchao") is not None


@register_method("int8-weight-only-torchao", TorchaoInt8WeightOnlyConfig, devices=("cuda",),
                 available=torchao_available, extra="torchao", reapply_on_load=True, command="quantize",
                 description="torchao int8 weight-only, only when torchao is installed (stored as fp32, "
                             "quantized again on load)")
def apply_torchao_int8_weight_only(model: nn.Module, config: TorchaoInt8WeightOnlyConfig) -> nn.Module:
    try:
        from torchao.quantization import quantize_
    except ImportError:
        raise FootprintError("int8-weight-only-torchao: torchao is not installed "
                             "(pip install 'w2v-footprint[torchao]')") from None
    try:
        from torchao.quantization import Int8WeightOnlyConfig

        tconf: Any = Int8WeightOnlyConfig()
    except ImportError:  # torchao < 0.9
        from torchao.quantization import int8_weight_only

        tconf = int8_weight_only()
    _reject_quantized(model, "int8-weight-only-torchao")
    model = _no_grad_float(model)
    quantize_(model, tconf)
    return model


# ----------------------------------------------------------------------------------------------- (de)serialisation
def quantized_modules(model: nn.Module) -> dict[str, str]:
    """name -> "dynamic" | "static" for every int8 Linear in ``model``."""
    from core.model_stats import _is_dynamic_qlinear, _is_static_qlinear

    out: dict[str, str] = {}
    for name, m in model.named_modules():
        if _is_dynamic_qlinear(m):
            out[name] = "dynamic"
        elif _is_static_qlinear(m):
            out[name] = "static"
    return out


def _compact(scale: torch.Tensor, zp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # observers compute scales in fp32, so fp32 storage is exact; keep fp64 if it is not
    s32 = scale.float()
    scale = s32 if torch.equal(s32.double(), scale.double()) else scale.double()
    return scale, zp.int() if zp.abs().max() < 2**31 else zp.long()


def _qtensor_parts(w: torch.Tensor) -> dict[str, torch.Tensor]:
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scale, zp = _compact(w.q_per_channel_scales(), w.q_per_channel_zero_points())
    else:
        scale, zp = _compact(torch.tensor([w.q_scale()], dtype=torch.float64),
                             torch.tensor([w.q_zero_point()], dtype=torch.int64))
    return {"qweight": w.int_repr(), "wscale": scale, "wzp": zp}


def _qtensor_from_parts(parts: dict[str, torch.Tensor], per_channel: bool) -> torch.Tensor:
    q = parts["qweight"]
    if per_channel:
        return torch._make_per_channel_quantized_tensor(q, parts["wscale"].double(), parts["wzp"].long(), 0)
    return torch._make_per_tensor_quantized_tensor(q, float(parts["wscale"][0]), int(parts["wzp"][0]))


def export_quantized(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Plain tensors (int8 weights, float scales) for every int8 Linear, and the layout to rebuild them."""
    from core.model_stats import packed_weight_bias

    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, Any] = {}
    for name, kind in quantized_modules(model).items():
        m = model.get_submodule(name)
        w, b = packed_weight_bias(m)
        per_channel = w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
        for k, v in _qtensor_parts(w).items():
            tensors[f"{name}::{k}"] = v.contiguous()
        if b is not None:
            tensors[f"{name}::bias"] = b.detach().float().contiguous()
        entry = {"kind": kind, "per_channel": per_channel,
                 "engine": getattr(model, "_footprint_quantized_engine", None), "in_features": int(m.in_features),
                 "out_features": int(m.out_features), "bias": b is not None}
        if kind == "static":
            entry.update(out_scale=float(m.scale), out_zero_point=int(m.zero_point))
        layout[name] = entry
    return tensors, layout


def rebuild_quantized(model: nn.Module, layout: dict[str, Any], tensors: dict[str, torch.Tensor]) -> nn.Module:
    """Put int8 Linear modules, built from stored tensors, where ``layout`` says (no quantize_dynamic call).

    For static entries the name is the inner Linear of a :class:`StaticQuantLinear`; its quantize stub's
    scale and zero point come with the model's other tensors.
    """
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd

    engines = {e.get("engine") for e in layout.values()} - {None}
    engine = engines.pop() if len(engines) == 1 else None
    with warnings.catch_warnings(), quantized_engine(engine):
        warnings.simplefilter("ignore")
        if engine:
            model._footprint_quantized_engine = engine
        for name, e in layout.items():
            parts = {k: tensors[f"{name}::{k}"] for k in ("qweight", "wscale", "wzp")}
            qw = _qtensor_from_parts(parts, e["per_channel"])
            bias = tensors.get(f"{name}::bias")
            if e["kind"] == "dynamic":
                q = nnqd.Linear(e["in_features"], e["out_features"], bias_=e["bias"], dtype=torch.qint8)
                q.set_weight_bias(qw, bias)
                _set_module(model, name, q)
            else:
                wrapper_name = name.removesuffix(".linear")  # "<name>.linear" -> the wrapper at <name>
                wrapper = StaticQuantLinear(model.get_submodule(wrapper_name))
                wrapper.quant = nnq.Quantize(float(tensors[f"{wrapper_name}.quant.scale"].reshape(-1)[0]),
                                             int(tensors[f"{wrapper_name}.quant.zero_point"].reshape(-1)[0]),
                                             torch.quint8)
                q = nnq.Linear(e["in_features"], e["out_features"], bias_=e["bias"], dtype=torch.qint8)
                q.set_weight_bias(qw, bias)
                q.scale, q.zero_point = float(e["out_scale"]), int(e["out_zero_point"])
                wrapper.linear = q
                wrapper.dequant = nnq.DeQuantize()
                _set_module(model, wrapper_name, wrapper)
    return model
