"""``int8-static`` (beyond the paper): every ``nn.Linear`` wrapped as quantize -> int8 Linear -> dequantize, with
activation ranges calibrated on a few utterances of training audio (:mod:`compress.methods.calibration`: by
default the training split that belongs to the evaluated data, never the evaluated set itself).

Everything between two Linears - GELU, layer norms, softmax, residual adds - runs in fp32: the paper's section 5.1
workaround (dequantize before GELU, requantize after), applied at every Linear.  Output activations are requantized
with a calibrated scale, which costs accuracy against dynamic quantization; the benchmark reports its WER and speed
as they are.  Kept apart from :mod:`.quantize` because it is the one torch.ao flow that needs calibration audio.
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from compress.methods.quantize import _no_grad_float, _reject_quantized, _set_module, linear_names
from compress.methods.registry import register_method

log = logging.getLogger(__name__)


@dataclass
class Int8StaticConfig:
    calibration_data: str | None = None  # None: the training split of the evaluated data (never the test set)
    calibration_utterances: int = 16
    observer: str = "histogram"  # histogram (clips outliers; PyTorch's default for x86) | minmax
    per_channel: bool = True
    calibration_seed: int = 0
    do_normalize: bool | None = None  # filled from the source variant
    eval_data: str | None = None  # filled by the runner: the evaluated set calibration must not overlap


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


def _static_qconfig(config: Int8StaticConfig):  # noqa: ANN202
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
    from compress.methods.calibration import calibrate_audio_for

    _reject_quantized(model, "int8-static")
    model = _no_grad_float(model.cpu())
    t0 = time.perf_counter()
    audios = calibrate_audio_for(config, model)
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
