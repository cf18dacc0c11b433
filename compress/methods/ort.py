"""``ort-fp32`` / ``ort-int8``: the model exported to ONNX and run by ONNX Runtime (beyond the paper).

The peer a CPU user would pick instead of torch: the float model (teacher, student, pruned; any Hugging Face
``Wav2Vec2ForCTC``) is exported with ``torch.onnx.export`` (the dynamo exporter, dynamic batch and length) and
run through an ``onnxruntime.InferenceSession``.  ``ort-int8`` then applies ONNX Runtime's dynamic quantization
to the ``MatMul`` nodes only, weights int8 per output channel: quantizing the convolutions too was slower than
fp32 on the probe CPU and cost 1.4 WER points on the teacher.

The variant's ``model`` is :class:`OrtWav2Vec2ForCTC`, called like ``Wav2Vec2ForCTC`` (``input_values``,
``attention_mask``) and returning ``.logits`` as a torch tensor, so the runner, the padding rules and the CTC
decoding are the torch variants' own.  An ORT stage must be the last of a chain (``distill-L4+ort-int8``); it
takes a float torch model (no ``int8-dynamic`` before it).  It is runtime-only: nothing is saved, the export is
redone (seconds) wherever the recipe is named.

Threads: the session uses ``torch.get_num_threads()`` intra-op threads, one inter-op thread, and its idle worker
threads do not spin (``session.intra_op.allow_spinning = 0``): spinning workers slowed the next torch variant in
the same process by ~60 % in the probe (tests/test_methods_ort.py checks the interleaving).

Optional dependency: ``pip install 'w2v-footprint[onnx]'`` (onnxruntime, onnx, onnxscript); without it the
recipes are listed as unavailable.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import FootprintError
from core.inference import uses_group_norm
from compress.methods.external import ExternalCTCModel
from compress.methods.quantize import resolve_reduce_range
from compress.methods.registry import register_method

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'w2v-footprint[onnx]'"


def ort_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class OrtConfig:
    quantize: bool = False  # int8 dynamic quantization of the ops below (ort-int8)
    op_types: tuple[str, ...] = ("MatMul",)  # Conv too was slower than fp32 and cost accuracy
    per_channel: bool = True  # one weight scale per output channel
    reduce_range: bool | None = None  # 7-bit int8 ranges; None: where the CPU lacks VNNI/AMX
    threads: int = 0  # intra-op threads; 0 = torch.get_num_threads() when the session is made
    allow_spinning: bool = False  # idle ORT workers spinning slow down whatever runs next in the process
    opset: int = 18


class OrtWav2Vec2ForCTC(ExternalCTCModel):
    """An ONNX Runtime session with the face of ``Wav2Vec2ForCTC`` (:mod:`compress.methods.external`); ``.to()``
    allows CPU, and CUDA only with the CUDA execution provider."""

    runtime_label = "an ONNX Runtime"

    def __init__(self, onnx_path: str | Path, config: Any, stats: dict[str, Any], ort_config: OrtConfig,
                 owned_dir: str | None = None) -> None:
        import onnxruntime as ort

        super().__init__(config, [], stats)
        self.onnx_path = str(onnx_path)
        self.ort_config = ort_config
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = ort_config.threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        spin = "1" if ort_config.allow_spinning else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(self.onnx_path, opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name
        if owned_dir:  # the exported file lives as long as the session
            self._finalizer = weakref.finalize(self, shutil.rmtree, owned_dir, True)

    # --- the Wav2Vec2ForCTC face ------------------------------------------------------------------------------
    def run(self, feeds: dict[str, Any]) -> Any:
        (logits,) = self.session.run([self.output_name], feeds)
        return logits

    def to(self, *args: Any, **kwargs: Any) -> OrtWav2Vec2ForCTC:
        device = self.requested_device(args, kwargs, str(self.onnx_path))
        if device is not None and device.type != "cpu":
            if "CUDAExecutionProvider" not in self.session.get_providers():
                raise FootprintError(f"ONNX Runtime variants run on CPU here, not {device} "
                                     "(the CUDA execution provider needs onnxruntime-gpu)")
        return self

    def extra_repr(self) -> str:
        return f"onnx={self.onnx_path}, quantize={self.ort_config.quantize}"


# ----------------------------------------------------------------------------------------------- export
def fresh_float_model(model: nn.Module) -> nn.Module:
    """A new fp32 model with the same weights and the positional conv's weight norm folded into a plain weight
    (ORT's quantizer needs it).  A fresh model, not a deepcopy: a copy shares the parametrization."""
    from compress.methods.prune import _unparametrize
    from compress.methods.storage import build_skeleton

    new = build_skeleton(model.config)  # the model's structure (max-pool layers, pruned heads and neurons)
    new.load_state_dict(model.state_dict())
    new = new.float().eval()
    pos = getattr(getattr(getattr(new, "wav2vec2", None), "encoder", None), "pos_conv_embed", None)
    if pos is not None and hasattr(pos, "conv"):
        with torch.no_grad():
            _unparametrize(pos.conv)
    for p in new.parameters():
        p.requires_grad_(False)
    return new


def _check_float(model: Any, name: str) -> None:
    from compress.methods.front_end import front_end_dtype
    from compress.methods.quantize import autocast_dtype, quantized_modules

    if model is None or isinstance(model, ExternalCTCModel):
        raise FootprintError(f"{name}: needs a torch model; a stage run by another runtime (ONNX Runtime, "
                             "OpenVINO) must be the last of a recipe")
    if (quantized_modules(model) or autocast_dtype(model) or front_end_dtype(model)
            or getattr(model, "_footprint_compiled", None)):
        raise FootprintError(f"{name}: export a float model; put {name} last instead of a torch int8/bf16 "
                             f"stage (e.g. distill-L4+{name}, not int8-dynamic+{name})")
    if any(p.dtype != torch.float32 for p in model.parameters() if p.is_floating_point()):
        raise FootprintError(f"{name}: export a float32 model, not a half-precision one")
    if not hasattr(model, "wav2vec2"):
        raise FootprintError(f"{name}: expected a Wav2Vec2ForCTC model, got {type(model).__name__}")


def export_onnx(model: nn.Module, path: Path, opset: int = 18, with_mask: bool = True) -> Path:
    """Export a float Wav2Vec2ForCTC to ``path`` (dynamic batch and length); returns the path."""
    import warnings

    class _Logits(nn.Module):
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            return self.m(input_values, attention_mask=attention_mask).logits

    wrapped = _Logits(model).eval()
    x = torch.randn(2, 16000)
    mask = torch.ones(2, 16000, dtype=torch.long)
    mask[1, 12000:] = 0
    args = (x, mask) if with_mask else (x,)
    batch, time = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("samples", min=400, max=16000 * 600)
    shapes = {"input_values": {0: batch, 1: time}}
    if with_mask:
        shapes["attention_mask"] = {0: batch, 1: time}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(wrapped, args, dynamo=True, dynamic_shapes=shapes, opset_version=opset,
                                 input_names=list(shapes), output_names=["logits"], external_data=False,
                                 verbose=False)
        prog.save(str(path))
    import onnx

    length = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[1]
    if length.HasField("dim_value"):  # the exporter specialised the length instead of failing: refuse it here
        raise FootprintError(f"ort: the ONNX export fixed the audio length at {length.dim_value} samples (this "
                             "model's structure does not export with a dynamic length); run it in torch instead")
    return path


def quantize_onnx(src: Path, dst: Path, op_types: tuple[str, ...], per_channel: bool, reduce_range: bool) -> Path:
    """``reduce_range``: 7-bit weights, which ONNX Runtime's docs advise on x86 CPUs without VNNI, where its u8 x s8
    kernels' 16-bit sums saturate."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), op_types_to_quantize=list(op_types), per_channel=per_channel,
                     weight_type=QuantType.QInt8, reduce_range=reduce_range)
    return dst


def onnx_weight_stats(path: Path) -> dict[str, Any]:
    """Bytes of the initializers (int8 weights + scales, fp32 elsewhere) and how many are int8."""
    import onnx

    m = onnx.load(str(path))
    total = int8 = 0
    for t in m.graph.initializer:
        arr = onnx.numpy_helper.to_array(t)
        total += arr.nbytes
        if arr.dtype.itemsize == 1:
            int8 += arr.size
    ops: dict[str, int] = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {"initializer_bytes": total, "int8_weights": int8, "ops": ops}


def float_model_for_export(model: nn.Module, name: str, available: bool, missing: str
                           ) -> tuple[nn.Module, dict[str, Any], bool]:
    """What a stage that hands the model to another runtime starts from: the checks, a fresh fp32 CPU copy, the
    torch model's statistics for ``Variant.info``, and whether it takes an attention mask (not group-norm)."""
    from core.model_stats import model_stats

    _check_float(model, name)
    if not available:
        raise FootprintError(f"{name}: {missing}")
    model = fresh_float_model(model.cpu())
    return model, model_stats(model), not uses_group_norm(model)


def build_session(model: nn.Module, config: OrtConfig, name: str) -> OrtWav2Vec2ForCTC:
    config = resolve_reduce_range(config)
    model, stats, with_mask = float_model_for_export(model, name, ort_available(),
                                                     f"onnxruntime is not installed ({INSTALL_HINT})")
    work = tempfile.mkdtemp(prefix="footprint-ort-")
    logging.disable(logging.WARNING)  # the exporter and quantizer log hundreds of lines at INFO/WARNING
    t0 = time.perf_counter()
    try:
        path = export_onnx(model, Path(work) / "model.onnx", config.opset, with_mask)
        if config.quantize:
            path = quantize_onnx(path, Path(work) / "model.int8.onnx", config.op_types, config.per_channel,
                                 bool(config.reduce_range))
            (Path(work) / "model.onnx").unlink()
        ws = onnx_weight_stats(path)
    except FootprintError:
        shutil.rmtree(work, True)
        raise
    except Exception as exc:
        shutil.rmtree(work, True)
        raise FootprintError(f"{name}: ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                             ) from exc
    finally:
        logging.disable(logging.NOTSET)
    disk = sum(f.stat().st_size for f in Path(work).iterdir())
    stats.update(size_on_disk_mb=round(disk / 1e6, 6), memory_mb=round(ws["initializer_bytes"] / 1e6, 6),
                 storage="onnx", runtime="onnxruntime", ort_int8_weights=ws["int8_weights"],
                 compute_dtype="int8-dynamic" if config.quantize else "float32",
                 export_s=round(time.perf_counter() - t0, 2))  # export (+ quantization): a one-time cost
    if config.quantize:
        stats["size_mb"] = round(ws["initializer_bytes"] / 1e6, 6)  # the weights as they run: int8 + fp32 rest
        stats["int8_reduce_range"] = config.reduce_range
        quantized_ops = {k: v for k, v in ws["ops"].items() if k in ("MatMulInteger", "DynamicQuantizeLinear",
                                                                       "ConvInteger")}
        log.info("%s: %s", name, quantized_ops)
    log.info("%s: exported to %s (%.2f MB on disk)", name, path, disk / 1e6)
    return OrtWav2Vec2ForCTC(path, model.config, stats, config, owned_dir=work)


@register_method("ort-int8", OrtConfig, options={"quantize": True}, runtime_only=True, last_only=True,
                 available=ort_available, extra="onnx", devices=("cpu",),
                 description="ONNX Runtime with int8 dynamic quantization of the MatMuls (weights per channel); "
                             "runtime-only, last in a chain, only with the `onnx` extra")
@register_method("ort-fp32", OrtConfig, options={"quantize": False}, runtime_only=True, last_only=True,
                 available=ort_available, extra="onnx", devices=("cpu",),
                 description="exported to ONNX, run by ONNX Runtime (fp32); runtime-only, last in a chain, "
                             "only with the `onnx` extra")
def apply_ort(model: nn.Module, config: OrtConfig) -> OrtWav2Vec2ForCTC:
    return build_session(model, config, "ort-int8" if config.quantize else "ort-fp32")
