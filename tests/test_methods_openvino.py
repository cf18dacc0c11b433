"""ov-fp32 / ov-int8 (compress/methods/openvino.py) on a tiny model: the OpenVINO model matches torch.

Tolerances (measured on the tiny model, ov-int8 calibrated on 4 utterances of the tiny corpus, tested on a padded
batch of 3 other utterances, real frames only): ov-fp32 max |logit difference| 6.1e-7 (asserted < 1.2e-6);
ov-int8 2.9 %, 11.0 %, 5.7 % of the utterance's largest |logit| with argmax agreement 0.993, 0.994, 0.979
(asserted < 20 % and > 0.95).  With the positional conv quantized too the same model is off by ~70 % and agrees
on ~25 % of the frames.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.errors import FootprintError
from compress.methods import openvino as ov_method
from compress.methods import registry
from compress.methods.quantize import cpu_has_int8_dot_product
from helpers import save_tiny_model, shared_tiny_corpus, tiny_model

needs_ov = pytest.mark.skipif(not ov_method.openvino_available(),
                              reason="openvino/nncf not installed (pip install 'w2v-footprint[openvino]')")

FP32_ATOL = 1.2e-6
INT8_REL = 0.2
INT8_ARGMAX = 0.95


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):  # noqa: ANN001, ANN201
    return shared_tiny_corpus(tmp_path_factory)


@pytest.fixture(scope="module")
def built(corpus):  # noqa: ANN001, ANN201
    if not ov_method.openvino_available():
        pytest.skip("openvino/nncf not installed")
    model = tiny_model()
    out = {"torch": model}
    for name in ("ov-fp32", "ov-int8"):
        method, cfg = registry.resolve_stage(name, {"calibration_data": str(corpus), "calibration_utterances": 4})
        out[name] = method.apply(model, cfg)
    return out


def _speech_batch(corpus):  # noqa: ANN001, ANN202
    """Three utterances the calibration did not see, zero-padded, normalised as the runner does."""
    from core.inference import pad_batch
    from compress.methods.calibration import choose_calibration_audio

    x, mask = pad_batch(choose_calibration_audio(str(corpus), 7)[4:], True)  # the draw's first 4 calibrated
    return torch.from_numpy(x), torch.from_numpy(mask)


@needs_ov
def test_ov_fp32_matches_torch(built, corpus):  # noqa: ANN001
    x, mask = _speech_batch(corpus)
    assert len(set(mask.sum(1).tolist())) == 3  # padded rows
    with torch.no_grad():
        ref = built["torch"](x, attention_mask=mask).logits
    out = built["ov-fp32"](x, attention_mask=mask).logits
    assert isinstance(out, torch.Tensor) and out.shape == ref.shape
    assert (out - ref).abs().max().item() < FP32_ATOL
    x1 = torch.randn(1, 7123)  # another batch and length than the conversion's example: the shapes are dynamic
    m1 = torch.ones(1, 7123, dtype=torch.long)
    with torch.no_grad():
        r1 = built["torch"](x1, attention_mask=m1).logits
    assert (built["ov-fp32"](x1, attention_mask=m1).logits - r1).abs().max().item() < FP32_ATOL
    assert (built["ov-fp32"](x1).logits - r1).abs().max().item() < FP32_ATOL  # no mask: all ones


@needs_ov
def test_ov_int8_close_to_torch(built, corpus):  # noqa: ANN001
    x, mask = _speech_batch(corpus)
    with torch.no_grad():
        ref = built["torch"](x, attention_mask=mask).logits
    out = built["ov-int8"](x, attention_mask=mask).logits
    frames = built["torch"]._get_feat_extract_output_lengths(mask.sum(1)).tolist()
    for i, n in enumerate(frames):
        o, r = out[i, :n], ref[i, :n]
        assert (o - r).abs().max().item() < INT8_REL * r.abs().max().item()
        assert (o.argmax(-1) == r.argmax(-1)).float().mean().item() > INT8_ARGMAX


@needs_ov
def test_info_records_runtime_timings_and_calibration(built, corpus):  # noqa: ANN001
    import openvino

    i8, f32 = built["ov-int8"].variant_info(), built["ov-fp32"].variant_info()
    for info in (i8, f32):
        assert info["runtime"] == f"openvino {openvino.get_version().split('-')[0]}" and info["storage"] == "openvino"
        assert info["export_s"] > 0 and info["compile_s"] > 0 and info["size_on_disk_mb"] > 0
        assert info["params"] == 27536 and info["transformer_layers"] == 2 and info["conv_layers"] == 7
    assert f32["calibration_s"] == 0 and f32["calibration_data"] is None and f32["compute_dtype"] == "float32"
    assert i8["calibration_s"] > 0 and i8["calibration_data"] == str(corpus) and i8["calibration_utterances"] == 4
    assert i8["compute_dtype"] == "int8-static+float32"
    assert i8["int8_reduce_range"] is (not cpu_has_int8_dot_product())  # half-range weights without VNNI/AMX
    assert i8["ov_int8_weights"] > 10_000 and f32["ov_int8_weights"] == 0
    assert i8["size_mb"] < 0.6 * f32["size_mb"] and f32["size_mb"] == pytest.approx(f32["params"] * 4 / 1e6)


@needs_ov
def test_front_end_and_positional_conv_stay_float(corpus):  # noqa: ANN001
    """Only the conv front end's and the positional conv's inputs are free of FakeQuantize nodes by default."""
    from compress.methods.ort import fresh_float_model

    model = fresh_float_model(tiny_model())
    base = ov_method.convert(model, True)
    feeds = ov_method.calibration_inputs(ov_method.OvConfig(calibration_data=str(corpus), calibration_utterances=2),
                                         True)

    def int8_input(node, hops: int = 3) -> bool:  # noqa: ANN001
        """A FakeQuantize (activations) or an int8 Constant (weights: Constant -> Convert -> Multiply) a few nodes
        up the input (a Transpose or Unsqueeze may sit between)."""
        for _ in range(hops):
            if node.get_type_name() == "FakeQuantize" or (node.get_type_name() == "Constant" and
                                                          node.get_output_element_type(0).size == 1):
                return True
            if node.get_input_size() == 0:
                return False
            node = node.input_value(0).get_node()
        return False

    def quantized_convs(front_end: bool) -> dict[str, int]:
        q = ov_method.quantize(base.clone(), feeds, front_end, reduce_range=False)
        count = {"Convolution": 0, "GroupConvolution": 0}
        for op in q.get_ordered_ops():
            if op.get_type_name() in count:
                count[op.get_type_name()] += any(int8_input(op.input_value(i).get_node()) for i in range(2))
        return count

    assert quantized_convs(False) == {"Convolution": 0, "GroupConvolution": 0}
    assert quantized_convs(True)["Convolution"] > 0


@needs_ov
def test_compiled_with_torch_threads_in_fp32(built):  # noqa: ANN001
    import openvino as ov

    for name in ("ov-fp32", "ov-int8"):
        compiled = built[name].compiled
        assert compiled.get_property("INFERENCE_NUM_THREADS") == torch.get_num_threads()
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32  # not the plugin's bf16 default


@needs_ov
def test_transcriber_runs_the_model(built):  # noqa: ANN001
    from core.inference import Transcriber

    rng = np.random.default_rng(0)
    audios = [rng.standard_normal(n).astype(np.float32) for n in (8000, 12000, 5000)]
    ref = Transcriber(built["torch"], batch_size=2).transcribe(audios)
    assert Transcriber(built["ov-fp32"], batch_size=2).transcribe(audios) == ref


@needs_ov
def test_refuses_cuda_and_half(built, tmp_path, monkeypatch):  # noqa: ANN001
    w = built["ov-fp32"]
    assert w.to("cpu") is w and w.eval() is w
    for bad in ("cuda", torch.device("cuda:0")):
        with pytest.raises(FootprintError, match="run on CPU here, not cuda") as exc:
            w.to(bad)
        assert "\n" not in str(exc.value)
    with pytest.raises(FootprintError):
        w.to(torch.float16)
    from compress.variants import TEACHER_ENV, load_variant

    monkeypatch.setenv(TEACHER_ENV, str(save_tiny_model(tmp_path / "teacher", layers=1)))
    with pytest.raises(FootprintError, match="run on CPU here"):
        load_variant("ov-fp32", device="cuda")


def _available(monkeypatch, value: bool) -> None:  # noqa: ANN001
    for name in ("ov-fp32", "ov-int8"):
        m = registry._METHODS[name]
        monkeypatch.setitem(registry._METHODS, name, dataclasses.replace(m, available=lambda: value))


def test_chains_refuse_ov_before_another_stage(monkeypatch):  # noqa: ANN001
    """Made available whether or not openvino is installed: the refusal must be the chain rule's, not 'missing'."""
    _available(monkeypatch, True)
    for recipe in ("ov-int8+int8-dynamic", "ov-fp32+prune-sensitivity", "ov-fp32+ov-int8", "ov-int8+compile"):
        with pytest.raises(FootprintError, match="must come last") as exc:
            registry.parse_recipe(recipe)
        assert "\n" not in str(exc.value)
    assert [s.name for s in registry.parse_recipe("distill-L4+ov-int8")] == ["distill-L4", "ov-int8"]
    assert [s.name for s in registry.parse_recipe("prune-sensitivity+ov-fp32")] == ["prune-sensitivity", "ov-fp32"]


def test_refuses_a_torch_int8_model():
    """Checked before openvino is needed: a torch int8 model is not converted."""
    from compress.methods.quantize import Int8DynamicConfig, apply_int8_dynamic

    q = apply_int8_dynamic(tiny_model(layers=1), Int8DynamicConfig())
    with pytest.raises(FootprintError, match="float model"):
        ov_method.build_compiled(q, ov_method.OvConfig(quantize=True), "ov-int8")
    with pytest.raises(FootprintError, match="last of a recipe"):
        ov_method.build_compiled(None, ov_method.OvConfig(), "ov-fp32")


def test_unavailable_without_openvino(monkeypatch):  # noqa: ANN001
    _available(monkeypatch, False)
    assert "ov-int8" not in registry.recipe_names()
    assert "ov-int8" in registry.markdown_table()  # the README table lists it anyway
    with pytest.raises(FootprintError, match=r"pip install 'w2v-footprint\[openvino\]'"):
        registry.resolve_stage("ov-int8")
    monkeypatch.setattr(ov_method, "openvino_available", lambda: False)
    with pytest.raises(FootprintError, match=r"ov-fp32: openvino/nncf are not installed \(pip install "
                                             r"'w2v-footprint\[openvino\]'\)$"):
        ov_method.build_compiled(tiny_model(layers=1), ov_method.OvConfig(), "ov-fp32")


@needs_ov
def test_runner_rows_say_openvino(tmp_path, monkeypatch, corpus):  # noqa: ANN001
    """The recipe through the real runner: a tiny teacher, the teacher and ov-fp32 interleaved."""
    import openvino

    from bench.runner import RunConfig, run_benchmark
    from compress.variants import TEACHER_ENV, load_variant
    from core.results import load_results

    monkeypatch.setenv(TEACHER_ENV, str(save_tiny_model(tmp_path / "teacher", layers=1)))
    cfg = RunConfig(out=str(tmp_path / "run"), models=["embedded", "ov-fp32"], data=str(corpus), repeats=1,
                    warmup=1, limit=3, energy="none", overhead_pairs=0, variant_memory="inprocess")
    summary = run_benchmark(cfg, load_variant, progress=False)
    assert summary.rows_written == 2
    df = load_results(tmp_path / "run").set_index("variant")
    assert df.loc["ov-fp32", "runtime"] == f"openvino {openvino.get_version().split('-')[0]}"
    assert df.loc["embedded", "runtime"] == "torch" and float(df.loc["ov-fp32", "compile_s"]) > 0
    assert df.loc["ov-fp32", "wer"] == pytest.approx(df.loc["embedded", "wer"])
    assert (df["model_s"] > 0).all() and (df["n_utts"] == 3).all()
