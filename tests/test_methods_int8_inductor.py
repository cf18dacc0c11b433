"""``int8-inductor``: the encoder's Linears int8 through torchao's PT2E flow, compiled by Inductor.  It stays close
to fp32, serves any batch and length (a batch of one included), counts its int8 weights in the size, chains with
the channels-last front end and refuses in one line what it cannot do."""
from __future__ import annotations

import pytest
import torch
from test_methods_support import tiny_corpus, tiny_model  # noqa: F401 - fixture

from compress.methods.compiled import compiled_info
from compress.methods.int8_inductor import Int8InductorEncoder, int8_inductor_available
from compress.methods.quantize import cpu_has_int8_dot_product
from compress.methods.registry import apply_stages, parse_recipe, resolve_stage
from core.errors import FootprintError
from core.model_stats import count_params, model_stats

pytestmark = [pytest.mark.slow,  # started first under pytest-xdist (tests/conftest.py)
              pytest.mark.skipif(not int8_inductor_available(),
                                 reason="int8-inductor needs torchao's PT2E quantizer and a C++ compiler")]


# The int8 encoder's own error bounds, measured on CPUs with VNNI/AMX; without them the activations take 7 bits
# (reduce_range), twice the quantization step: measured about twice the error on an AVX2 EPYC (0.36 % against
# 0.18 % on the layer-norm model; 0.74 % with full 8-bit ranges, the saturation the 7 bits avoid).
INT8_STEP = 1.0 if cpu_has_int8_dot_product() else 2.0


def encoder_runtime(model: torch.nn.Module) -> str:
    return str(compiled_info(model)["runtime"])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, str]:
    """The chain and the C++ AOTInductor generated for it (built here, into an empty compile cache)."""
    from compress.methods.aoti import package_source

    with pytest.MonkeyPatch.context() as mp, torch._inductor.config.patch(force_disable_caches=True):
        mp.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("compile-cache")))
        model = apply_stages(tiny_model(layers=2), parse_recipe("front-end-bf16+int8-inductor"))
    assert compiled_info(model)["compile_artefact"] == "built"
    return model, package_source(model.wav2vec2.encoder.artefact)


@pytest.fixture(scope="module")
def int8_chain(built: tuple[torch.nn.Module, str]) -> torch.nn.Module:
    return built[0]


def test_the_compiled_graph_runs_onednn_int8_linears(built: tuple[torch.nn.Module, str]) -> None:
    """The speed-up is oneDNN's int8 GEMM, which Inductor emits only with weight freezing: without it the graph
    still quantizes and dequantizes (close to fp32, every accuracy test green) but runs fp32 matmuls.  The
    artefact's generated C++ calls it through AOTInductor's CPU shim (``aoti_torch_cpu__qlinear_pointwise*``)."""
    code = built[1]
    calls = code.count("AOTI_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu__qlinear_pointwise")
    # one per Linear of the tiny encoder (2 layers x q, k, v, out, 2 feed-forward): all of them int8
    linears = sum(isinstance(m, torch.nn.Linear) for m in tiny_model(layers=2).wav2vec2.encoder.modules())
    assert calls == linears


def test_close_to_fp32_at_lengths_and_batches_it_was_not_built_on(int8_chain: torch.nn.Module) -> None:
    fp32 = tiny_model(layers=2)
    front_end_only = apply_stages(tiny_model(layers=2), parse_recipe("front-end-bf16"))
    assert isinstance(int8_chain.wav2vec2.encoder, Int8InductorEncoder)
    torch.manual_seed(1)
    with torch.inference_mode():
        for batch, n in ((2, 7000), (5, 11111)):
            x = torch.randn(batch, n)
            out, ref = int8_chain(x).logits, fp32(x).logits
            # measured: 1.4 % / 1.7 % from fp32 (almost all of it the bf16 front end), argmax 100 % / 99.4 %
            assert _rel(out, ref) < 0.034
            assert float((out.argmax(-1) == ref.argmax(-1)).float().mean()) > 0.988
            # the int8 encoder's own share, against the same bf16 front end with an fp32 encoder: measured
            # 0.039-0.040 %; an encoder running fp32 would be ~1e-7 away and fail the lower bound
            assert 1e-4 < _rel(out, front_end_only(x).logits) < 8e-4 * INT8_STEP
        # a batch of one: the exported graph fails on one, so the encoder runs it as two copies of itself (the
        # graph never sees a batch of one) and keeps the first; measured 1.26 % from fp32
        encoder, seen = int8_chain.wav2vec2.encoder, []
        compiled = encoder._compiled
        object.__setattr__(encoder, "_compiled", lambda h, m: seen.append((h.shape[0], m.shape[0])) or compiled(h, m))
        try:
            x = torch.randn(1, 9000)
            out = int8_chain(x).logits
        finally:
            object.__setattr__(encoder, "_compiled", compiled)
        assert seen == [(2, 2)] and out.shape[0] == 1
        assert _rel(out, fp32(x).logits) < 0.025


def test_int8_weights_are_counted_and_named(int8_chain: torch.nn.Module) -> None:
    fp32 = tiny_model(layers=2)
    stats, ref = model_stats(int8_chain), model_stats(fp32)
    assert count_params(int8_chain) == count_params(fp32)  # every weight once: int8 Linears, fp32 rest
    assert stats["transformer_layers"] == 2 and stats["flops_per_s"] == ref["flops_per_s"]
    # the encoder's Linear weights at 1 byte each plus a scale and a zero point per row (8 bytes each, as for
    # int8-dynamic's per-channel tensors); everything else as in fp32
    linears = [m for m in fp32.wav2vec2.encoder.modules() if isinstance(m, torch.nn.Linear)]
    expected = ref["size_mb"] * 1e6 - sum(3 * m.weight.numel() - 16 * m.out_features for m in linears)
    assert stats["size_mb"] * 1e6 == pytest.approx(expected)
    assert compiled_info(int8_chain)["runtime"].startswith("AOTInductor (encoder int8")
    # the fp32-rest form keeps ATen's attention kernel
    assert any("scaled_dot_product" in op for op in int8_chain.wav2vec2.encoder.ops)
    assert "matmuls" not in encoder_runtime(int8_chain)
    assert compiled_info(int8_chain)["compile_s"] > 0
    state = int8_chain.state_dict()
    assert not any(k.endswith("_proj.weight") for k in state)  # the fp32 Linear weights are gone
    assert not any("_orig_mod" in k for k in state)  # and the compiled graph's tensors are not there twice
    from compress.methods.storage import planned_size_bytes

    assert planned_size_bytes(int8_chain) < 1.25 * stats["memory_mb"] * 1e6


def test_refuses_what_it_cannot_do_in_one_line(int8_chain: torch.nn.Module) -> None:
    method, cfg = resolve_stage("int8-inductor")
    with pytest.raises(FootprintError, match="int8 already"):
        method.apply(int8_chain, cfg)
    with pytest.raises(FootprintError, match="use one int8 recipe"):
        apply_stages(tiny_model(layers=1), parse_recipe("int8-dynamic+int8-inductor"))
    with pytest.raises(FootprintError, match="float32 encoder"):
        apply_stages(tiny_model(layers=1), parse_recipe("bf16+int8-inductor"))
    compiled_encoder = tiny_model(layers=1)
    compiled_encoder._footprint_compiled = "encoder"  # what compile-encoder marks (tests/test_methods_compiled.py)
    with pytest.raises(FootprintError, match="compiled already"):
        method.apply(compiled_encoder, cfg)
    compile_method, compile_cfg = resolve_stage("compile-encoder")
    with pytest.raises(FootprintError, match="compiled already"):
        compile_method.apply(int8_chain, compile_cfg)
    from compress.variants import _finish

    with pytest.raises(FootprintError, match="x86 CPUs only, not cuda"):  # checked before moving anything
        _finish(int8_chain, True, "front-end-bf16+int8-inductor", "r", {}, None, "cuda", None)
    with pytest.raises(FootprintError, match="inference only"):
        int8_chain.train()
    int8_chain.eval()  # what the transcriber calls: allowed


def test_layer_norm_front_end_passes_its_attention_mask() -> None:
    """The large architecture's kind (layer-norm front end): the encoder is exported with the padding mask."""
    from transformers import Wav2Vec2ForCTC

    fp32 = tiny_model(layers=1)
    config = fp32.config
    config.feat_extract_norm, config.do_stable_layer_norm = "layer", True
    torch.manual_seed(0)
    fp32 = Wav2Vec2ForCTC(config).eval()
    model = Wav2Vec2ForCTC(config).eval()
    model.load_state_dict(fp32.state_dict())
    model = apply_stages(model, parse_recipe("int8-inductor"))
    assert model.wav2vec2.encoder._with_mask
    x = torch.randn(3, 8000)
    mask = torch.ones(3, 8000, dtype=torch.long)
    mask[2, 5000:] = 0
    x[2, 5000:] = 0
    with torch.inference_mode():
        out, ref = model(x, attention_mask=mask).logits, fp32(x, attention_mask=mask).logits
        # measured 0.18 % (fp32 front end: all of it int8; an fp32 encoder would be ~1e-7 away)
        assert 1e-4 < _rel(out, ref) < 0.0035 * INT8_STEP
        # the mask reaches the graph: without it the padded utterance's logits move by ~75 %
        assert _rel(model(x).logits[2], out[2]) > 0.3
        # no mask: every frame real, as the float model reads it (measured 0.023 %)
        assert _rel(model(x[:2, :5000]).logits, fp32(x[:2, :5000]).logits) < 5e-4 * INT8_STEP


def test_group_norm_front_end_runs_a_batch_of_one_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    """The paper's large model's kind (group-norm front end, no padding mask; the runner feeds it one utterance
    at a time): exported without a mask, a batch of one is not doubled.  On a CPU without VNNI/AMX the build says
    that it may be slower than fp32 there."""
    from transformers import Wav2Vec2ForCTC

    config = tiny_model(layers=1).config
    config.feat_extract_norm = "group"
    torch.manual_seed(0)
    fp32 = Wav2Vec2ForCTC(config).eval()
    model = Wav2Vec2ForCTC(config).eval()
    model.load_state_dict(fp32.state_dict())
    with caplog.at_level("WARNING", logger="compress.methods.int8_inductor"):
        model = apply_stages(model, parse_recipe("int8-inductor"))
    assert ("no VNNI/AMX" in caplog.text) is (not cpu_has_int8_dot_product())
    encoder = model.wav2vec2.encoder
    assert not encoder._with_mask
    seen: list[int] = []
    compiled = encoder._compiled
    encoder._compiled = lambda h: seen.append(h.shape[0]) or compiled(h)
    with torch.inference_mode():
        for n in (7000, 12000):
            x = torch.randn(1, n)
            assert 2e-5 < _rel(model(x).logits, fp32(x).logits) < 4.5e-4 * INT8_STEP  # measured 0.020-0.022 %
        with pytest.raises(FootprintError, match="without an attention mask"):
            model(x, attention_mask=torch.ones_like(x, dtype=torch.long))
    assert seen == [1, 1]


def test_mixed_bf16_keeps_the_grouped_conv_in_fp32_and_stays_close_to_fp32() -> None:
    """``int8-inductor-bf16``: int8 Linears, the rest of the encoder under bf16 autocast, except the positional
    conv (grouped: wrong in bf16 on oneDNN CPUs with AMX), which the graph runs in fp32."""
    from compress.methods import int8_inductor
    from compress.variants import _info

    fp32 = tiny_model(layers=2)
    model = apply_stages(tiny_model(layers=2), parse_recipe("front-end-bf16+int8-inductor-bf16"))
    encoder = model.wav2vec2.encoder
    assert encoder._mixed_bf16
    # the positional conv only, exported as a channels-last conv2d (compress/methods/positional_conv.py)
    fp32_conv2d = int8_inductor._FP32_CONVS[torch.ops.aten.conv2d.default].__name__
    assert [op for op in encoder.ops if "conv" in op] == [fp32_conv2d]
    # with bf16 around the int8, attention is two matmuls and a fused softmax (compress/methods/attention.py)
    assert not any("scaled_dot_product" in op for op in encoder.ops)
    assert "attention as matmuls" in encoder_runtime(model)
    torch.manual_seed(2)
    with torch.inference_mode():
        for batch, n in ((1, 9000), (3, 12000)):
            x = torch.randn(batch, n)
            out, ref = model(x).logits, fp32(x).logits
            assert out.dtype == torch.float32
            assert _rel(out, ref) < 0.031  # measured 1.3 % / 1.6 %
            assert float((out.argmax(-1) == ref.argmax(-1)).float().mean()) > 0.925  # measured 96.3 % / 100 %
    info = _info(model, {}, None)
    assert info["compute_dtype"] == "bfloat16-front-end+encoder"
    assert info["int8_reduce_range"] is (not cpu_has_int8_dot_product())
    assert info["runtime"].startswith("AOTInductor (encoder int8 + bf16")


def test_a_grouped_conv_in_the_graph_ignores_bf16_autocast() -> None:
    from compress.methods.int8_inductor import _FP32_CONVS

    x, w = torch.randn(2, 8, 20), torch.randn(8, 2, 5)
    conv1d, conv2d = _FP32_CONVS[torch.ops.aten.conv1d.default], _FP32_CONVS[torch.ops.aten.conv2d.default]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out1 = conv1d(x, w, None, [1], [2], [1], 4)
        out2 = conv2d(x[:, :, None], w[:, :, None], None, [1, 1], [0, 2], [1, 1], 4)
    assert out1.dtype == out2.dtype == torch.float32
    assert torch.equal(out1, torch.nn.functional.conv1d(x, w, padding=2, groups=4))
    assert torch.equal(out2, torch.nn.functional.conv2d(x[:, :, None], w[:, :, None], padding=(0, 2), groups=4))


def test_static_ranges_come_from_the_calibration_audio(tiny_corpus, int8_chain) -> None:  # noqa: ANN001, F811
    """``int8-inductor-static``: activation scales fixed from calibration utterances (no per-call ranges)."""
    def targets(model: torch.nn.Module) -> str:
        return " ".join(model.wav2vec2.encoder.ops)

    fp32 = tiny_model(layers=2)
    stages = parse_recipe("front-end-bf16+int8-inductor-static-bf16")
    stages[-1].config.calibration_data, stages[-1].config.calibration_utterances = str(tiny_corpus), 4
    static = apply_stages(tiny_model(layers=2), stages)
    assert "choose_qparams" not in targets(static) and "quantize_per_tensor" in targets(static)
    assert compiled_info(static)["runtime"].startswith("AOTInductor (encoder int8 (static) + bf16")
    from compress.variants import _info

    info = _info(static, {}, None)  # the one-time costs the runner reports, and what it calibrated on
    assert info["calibration_data"] == str(tiny_corpus) and info["compile_cache"] in ("cold", "warm")
    if info["compile_artefact"] == "built":  # export and calibration ran in this process
        assert 0 < info["export_s"] < info["compile_s"] and 0 < info["calibration_s"] < info["compile_s"]
    else:  # loaded from an earlier build: neither ran, neither is reported
        assert info["compile_artefact"] == "loaded" and "export_s" not in info and "calibration_s" not in info
    assert "choose_qparams" in targets(int8_chain)  # dynamic: the ranges are measured on each input, per call
    from core.data.librispeech import load_audio, read_subset

    audio = torch.from_numpy(load_audio(read_subset(tiny_corpus).utterances[5]))[None]
    audio = (audio - audio.mean()) / audio.std()
    with torch.inference_mode():
        out, ref = static(audio).logits, fp32(audio).logits
    assert 1e-4 < _rel(out, ref) < 0.03  # measured 1.5 % (calibrated int8 + bf16)
