"""``ov-fp32`` / ``ov-int8``: the model converted to OpenVINO and run by its CPU plugin (beyond the paper).

The other peer a CPU user would pick instead of torch (with ONNX Runtime, :mod:`.ort`).  The float model
(teacher, student, pruned; any Hugging Face ``Wav2Vec2ForCTC``) is converted with ``openvino.convert_model``
(inputs ``input_values`` and, for layer-norm models, ``attention_mask``, both ``[-1, -1]``: any batch and
length) and compiled for ``CPU``.  ``ov-int8`` first applies NNCF post-training quantization
(``nncf.quantize``, ``model_type=TRANSFORMER``: int8 weights per channel, activation ranges calibrated on
train audio, never the reported test set) to everything but the conv feature extractor and the positional conv:
on the teacher (dev-clean) ov-int8 scored 8.94 % WER against fp32's 8.97 %, 46.72 % with the front end quantized
too (``quantize_front_end``) on an AMX Xeon.

Precision: OpenVINO's CPU plugin runs fp32 models in bf16 by default on CPUs with AVX512-BF16/AMX, and on an AMX
Xeon that default transcribed the teacher at 99.8 % WER (logits off by their whole range; most likely the
positional grouped conv, as oneDNN's bf16 grouped conv under torch there, and marking that node to stay fp32 did
not help).  ``ov-fp32`` pins ``INFERENCE_PRECISION_HINT=f32`` so it is the fp32 model on every CPU, and
``ov-int8`` runs what is not int8 in fp32 as ``ort-int8`` does; no bf16 recipe is registered (``precision``
stays an option for CPUs where it is right).

The variant's ``model`` is :class:`OvWav2Vec2ForCTC`, called like ``Wav2Vec2ForCTC`` and returning ``.logits``
as a torch tensor, so the runner, the padding rules and the CTC decoding are the torch variants' own.  An
OpenVINO stage must be the last of a chain and takes a float torch model; it is runtime-only: nothing is saved,
the conversion (and calibration) is redone wherever the recipe is named.  Info records ``runtime``
(``openvino <version>``), ``export_s`` (conversion), ``calibration_s`` (NNCF), ``compile_s``
(``core.compile_model``) and ``calibration_data``.

Threads: ``INFERENCE_NUM_THREADS = torch.get_num_threads()`` (the torch variants' count), one stream, threads
not pinned to cores (the torch variants timed in the same process are not pinned either).

Optional dependency: ``pip install 'w2v-footprint[openvino]'`` (openvino, nncf); without it the recipes are
listed as unavailable.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import FootprintError
from compress.methods.external import ExternalCTCModel
from compress.methods.registry import register_method

log = logging.getLogger(__name__)

EXTRA = "openvino"
INSTALL_HINT = f"pip install 'w2v-footprint[{EXTRA}]'"
FRONT_END_PATTERN = ".*feature_extractor.*"  # node names of the conv front end in the converted graph
# The positional convolution (the one grouped conv) stays float: quantized, the teacher's logits were off by 100 %
# of their range on an AMX Xeon (frame argmax agreement 66 %; 4 % off and 100 % agreement with it left float).
KEEP_FLOAT_TYPES = ("GroupConvolution",)


def openvino_available() -> bool:
    """Installed, not imported: listing recipes stays fast, and NNCF is imported only with telemetry off."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


def openvino_version() -> str:
    import openvino

    return openvino.get_version().split("-")[0]


@contextlib.contextmanager
def _no_telemetry() -> Iterator[None]:
    """OpenVINO's converter and NNCF send usage telemetry unless a consent file under $HOME says no; both skip
    it in CI (``CI=true``), the one switch that writes nothing: a benchmark sends nothing anywhere."""
    old = {k: os.environ.get(k) for k in ("CI", "NNCF_CI")}
    os.environ.update(CI="true", NNCF_CI="1")
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class OvConfig:
    quantize: bool = False  # NNCF post-training int8 quantization (ov-int8)
    precision: str = "f32"  # INFERENCE_PRECISION_HINT of what is not int8: f32 | bf16 (the plugin's own default
    # on AVX512-BF16/AMX CPUs; 99.8 % WER on an AMX Xeon, see above)
    quantize_front_end: bool = False  # the conv feature extractor int8 too (cost WER on the teacher)
    reduce_range: bool | None = None  # 7-bit int8 ranges; None: where the CPU lacks VNNI/AMX
    calibration_data: str | None = None  # None: the training split of the evaluated data (never the test set)
    calibration_utterances: int = 64
    eval_data: str | None = None  # filled by the runner: the evaluated set calibration must not overlap
    threads: int = 0  # INFERENCE_NUM_THREADS; 0 = torch.get_num_threads() when the model is compiled
    do_normalize: bool | None = None  # filled from the source variant: calibration inputs as the runner's


class OvWav2Vec2ForCTC(ExternalCTCModel):
    """An OpenVINO compiled model with the face of ``Wav2Vec2ForCTC`` (:mod:`compress.methods.external`); ``.to()``
    allows CPU and fp32 inputs only."""

    runtime_label = "an OpenVINO"

    def __init__(self, compiled: Any, config: Any, stats: dict[str, Any], ov_config: OvConfig) -> None:
        super().__init__(config, [i.get_any_name() for i in compiled.inputs], stats)
        self.compiled = compiled
        self.ov_config = ov_config
        self._request = compiled.create_infer_request()

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        self._request.infer(feeds)
        return np.array(self._request.get_output_tensor(0).data)  # a copy: the request reuses its buffer

    def to(self, *args: Any, **kwargs: Any) -> OvWav2Vec2ForCTC:
        device = self.requested_device(args, kwargs, "openvino")
        if device is not None and device.type != "cpu":
            raise FootprintError(f"openvino: OpenVINO variants run on CPU here, not {device}")
        return self

    def extra_repr(self) -> str:
        return f"quantize={self.ov_config.quantize}, precision={self.ov_config.precision}"


# ----------------------------------------------------------------------------------------------- steps
def convert(model: nn.Module, with_mask: bool) -> Any:
    """``openvino.convert_model`` of a float Wav2Vec2ForCTC -> an ``ov.Model`` with dynamic batch and length."""
    import openvino as ov

    class _Logits(nn.Module):
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            return self.m(input_values, attention_mask=attention_mask).logits

    x = torch.randn(2, 16000)
    mask = torch.ones(2, 16000, dtype=torch.long)
    mask[1, 12000:] = 0
    inputs = [("input_values", ov.PartialShape([-1, -1]), ov.Type.f32)]
    if with_mask:
        inputs.append(("attention_mask", ov.PartialShape([-1, -1]), ov.Type.i64))
    import warnings

    with warnings.catch_warnings(), torch.no_grad(), _no_telemetry():
        warnings.simplefilter("ignore")
        return ov.convert_model(_Logits(model).eval(), example_input=(x, mask) if with_mask else (x,),
                                input=inputs)


def calibration_inputs(config: OvConfig, with_mask: bool) -> list[dict[str, np.ndarray]]:
    """The calibration feeds: one utterance each (no padding in the ranges), normalised as the runner does."""
    from core.inference import pad_batch
    from compress.methods.calibration import calibrate_audio_for

    audios = calibrate_audio_for(config)
    do_norm = True if config.do_normalize is None else config.do_normalize
    feeds = []
    for a in audios:
        values, mask = pad_batch([a], do_norm)
        feeds.append({"input_values": values, "attention_mask": mask} if with_mask else {"input_values": values})
    return feeds


def quantize(ov_model: Any, feeds: list[dict[str, np.ndarray]], front_end: bool, reduce_range: bool) -> Any:
    """NNCF post-training quantization (TRANSFORMER preset: int8 weights per channel, calibrated activations);
    the conv front end left in float unless ``front_end``, the positional conv always.  ``reduce_range``: every
    weight in half the int8 range (NNCF's ``OverflowFix.ENABLE``, which its docs advise where the default, the first
    layer only, still loses accuracy on CPUs without VNNI)."""
    with _no_telemetry():
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

        ignored = nncf.IgnoredScope(patterns=[] if front_end else [FRONT_END_PATTERN], types=list(KEEP_FLOAT_TYPES))
        advanced = AdvancedQuantizationParameters(
            overflow_fix=OverflowFix.ENABLE if reduce_range else OverflowFix.FIRST_LAYER)
        with contextlib.redirect_stdout(io.StringIO()):  # NNCF's progress bars (rich) write to stdout
            return nncf.quantize(ov_model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                                 subset_size=len(feeds), ignored_scope=ignored, advanced_parameters=advanced)


def compile_cpu(ov_model: Any, config: OvConfig) -> Any:
    import openvino as ov

    if config.precision not in ("f32", "bf16"):
        raise FootprintError(f"openvino: precision must be f32 or bf16, not {config.precision!r}")
    props = {"INFERENCE_NUM_THREADS": config.threads or torch.get_num_threads(),
             "INFERENCE_PRECISION_HINT": config.precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
             "ENABLE_CPU_PINNING": False}
    return ov.Core().compile_model(ov_model, "CPU", props)


def ir_stats(ov_model: Any) -> dict[str, Any]:
    """Bytes of the model's constants (int8 weights + scales, float elsewhere), its int8 weights, its IR's size."""
    import openvino as ov

    total = int8 = 0
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() == "Constant":
            et = op.get_output_element_type(0)
            n = int(np.prod(list(op.get_output_shape(0)))) if op.get_output_partial_shape(0).is_static else 0
            total += n * et.size
            if et in (ov.Type.i8, ov.Type.u8) and n > 1:
                int8 += n
    work = tempfile.mkdtemp(prefix="footprint-ov-")
    try:
        ov.save_model(ov_model, str(Path(work) / "model.xml"), compress_to_fp16=False)
        disk = sum(f.stat().st_size for f in Path(work).iterdir())
    finally:
        shutil.rmtree(work, True)
    return {"constant_bytes": total, "int8_weights": int8, "disk_bytes": disk}


def build_compiled(model: nn.Module, config: OvConfig, name: str) -> OvWav2Vec2ForCTC:
    from compress.methods.ort import float_model_for_export
    from compress.methods.quantize import resolve_reduce_range

    config = resolve_reduce_range(config)
    model, stats, with_mask = float_model_for_export(model, name, openvino_available(),
                                                     f"openvino/nncf are not installed ({INSTALL_HINT})")
    logging.disable(logging.WARNING)  # the converter and NNCF log hundreds of lines at INFO/WARNING
    try:
        t0 = time.perf_counter()
        ov_model = convert(model, with_mask)
        export_s = time.perf_counter() - t0
        calibration_s = 0.0
        if config.quantize:
            feeds = calibration_inputs(config, with_mask)
            t0 = time.perf_counter()
            ov_model = quantize(ov_model, feeds, config.quantize_front_end, bool(config.reduce_range))
            calibration_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        compiled = compile_cpu(ov_model, config)
        compile_s = time.perf_counter() - t0
        ir = ir_stats(ov_model)
    except FootprintError:
        raise
    except Exception as exc:
        raise FootprintError(f"{name}: OpenVINO conversion failed: {type(exc).__name__}: "
                             f"{(str(exc).strip().splitlines() or [''])[0]}") from exc
    finally:
        logging.disable(logging.NOTSET)
    dtype = "float32" if config.precision == "f32" else "bfloat16"
    stats.update(size_on_disk_mb=round(ir["disk_bytes"] / 1e6, 6), memory_mb=round(ir["constant_bytes"] / 1e6, 6),
                 storage="openvino", runtime=f"openvino {openvino_version()}", ov_int8_weights=ir["int8_weights"],
                 compute_dtype=f"int8-static+{dtype}" if config.quantize else dtype,
                 export_s=round(export_s, 2), calibration_s=round(calibration_s, 2), compile_s=round(compile_s, 2),
                 calibration_data=config.calibration_data if config.quantize else None,
                 calibration_utterances=config.calibration_utterances if config.quantize else 0)
    if config.quantize:
        stats["size_mb"] = round(ir["constant_bytes"] / 1e6, 6)  # the weights as they run: int8 + float rest
        stats["int8_reduce_range"] = config.reduce_range
    log.info("%s: converted in %.1f s, calibrated in %.1f s, compiled in %.1f s (%d int8 weights)", name, export_s,
             calibration_s, compile_s, ir["int8_weights"])
    return OvWav2Vec2ForCTC(compiled, model.config, stats, config)




@register_method("ov-int8", OvConfig, options={"quantize": True}, runtime_only=True, last_only=True,
                 available=openvino_available, extra=EXTRA, devices=("cpu",),
                 description="OpenVINO with NNCF post-training int8 (weights per channel, activations calibrated on "
                             "train audio; the conv front end and the positional conv left in fp32), the rest fp32; "
                             "runtime-only, last in a chain, only with the `openvino` extra")
@register_method("ov-fp32", OvConfig, options={"quantize": False}, runtime_only=True, last_only=True,
                 available=openvino_available, extra=EXTRA, devices=("cpu",),
                 description="converted to OpenVINO, run by its CPU plugin in fp32; runtime-only, last in a chain, "
                             "only with the `openvino` extra")
def apply_openvino(model: nn.Module, config: OvConfig) -> OvWav2Vec2ForCTC:
    return build_compiled(model, config, "ov-int8" if config.quantize else "ov-fp32")
