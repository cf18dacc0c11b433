"""Quantization recipes on a tiny random model: what is quantized, honest sizes, exact save/load round trips."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_methods_support import safetensors_payload, tiny_corpus, tiny_model  # noqa: F401 - fixture
from torch import nn

from core.errors import FootprintError
from compress.methods import quantize as q
from core.model_stats import count_params, memory_bytes, model_stats
from compress.methods.registry import apply_stages, parse_recipe
from compress.methods.storage import load_variant_dir, save_variant

X = torch.randn(2, 12000, generator=torch.Generator().manual_seed(0))


def _save_load(model: nn.Module, out: Path, recipe: str) -> tuple[nn.Module, dict]:
    rec = save_variant(model, out, recipe=recipe, stages=[{"name": recipe, "config": {}}], do_normalize=True)
    loaded, do_norm, rec2 = load_variant_dir(out)
    assert do_norm is True and rec2["recipe"] == recipe
    return loaded, rec


def test_int8_dynamic_quantizes_every_linear(tmp_path: Path) -> None:
    model = tiny_model(layers=4)
    n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
    assert n_linear == 4 * 6 + 2  # q, k, v, out, 2 FFN per layer + feature projection + CTC head
    with torch.no_grad():
        ref = model(X).logits
    fp32_bytes = memory_bytes(model)
    params = count_params(model)
    qm = q.apply_int8_dynamic(model, q.Int8DynamicConfig())
    kinds = q.quantized_modules(qm)
    assert len(kinds) == n_linear and set(kinds.values()) == {"dynamic"}
    assert not any(isinstance(m, nn.Linear) for m in qm.modules())  # attention projections included
    assert {f"wav2vec2.encoder.layers.{i}.attention.{p}_proj" for i in range(4) for p in "qkv"} <= set(kinds)
    assert count_params(qm) == params
    assert memory_bytes(qm) < 0.6 * fp32_bytes
    with torch.no_grad():
        out = qm(X).logits
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()  # int8 stays close on a random model

    loaded, rec = _save_load(qm, tmp_path / "int8", "int8-dynamic")
    files = {p.name for p in (tmp_path / "int8").iterdir()}
    assert "variant.safetensors" in files and "model.safetensors" not in files  # from_pretrained fails loudly
    assert rec["storage"] == "tensors" and len(rec["quantized_linears"]) == n_linear
    assert rec["size_bytes"] == (tmp_path / "int8" / "variant.safetensors").stat().st_size
    # the size as it runs, as the paper's 354 MB int8 model (not params x 4)
    assert rec["size_mb"] == pytest.approx(memory_bytes(qm) / 1e6) and rec["size_mb"] < 0.6 * params * 4 / 1e6
    assert safetensors_payload(tmp_path / "int8" / "variant.safetensors") < 0.45 * params * 4
    with torch.no_grad():
        assert torch.equal(loaded(X).logits, out)  # bit-exact: the stored int8 weights, not a requantization
    from safetensors.torch import load_file

    t = load_file(str(tmp_path / "int8" / "variant.safetensors"))
    assert t["wav2vec2.encoder.layers.0.attention.q_proj::qweight"].dtype == torch.int8


def test_int8_dynamic_per_channel_round_trip(tmp_path: Path) -> None:
    qm = q.apply_int8_dynamic(tiny_model(layers=2), q.Int8DynamicConfig(per_channel=True))
    loaded, rec = _save_load(qm, tmp_path / "pc", "int8-dynamic")
    assert all(e["per_channel"] for e in rec["quantized_linears"].values())
    with torch.no_grad():
        assert torch.equal(loaded(X).logits, qm(X).logits)


def test_quantizing_twice_is_one_line_error() -> None:
    qm = q.apply_int8_dynamic(tiny_model(layers=1), q.Int8DynamicConfig())
    with pytest.raises(FootprintError, match="already int8"):
        q.apply_int8_dynamic(qm, q.Int8DynamicConfig())


def test_int8_static_calibrates_and_round_trips(tmp_path: Path, tiny_corpus: Path) -> None:  # noqa: F811
    model = tiny_model(layers=2)
    with torch.no_grad():
        ref = model(X).logits
    cfg = q.Int8StaticConfig(calibration_data=str(tiny_corpus), calibration_utterances=4, observer="minmax")
    flops = model_stats(model)["flops_per_s"]
    qm = q.apply_int8_static(model, cfg)
    assert model_stats(qm)["flops_per_s"] == pytest.approx(flops)  # each Linear counted once
    kinds = q.quantized_modules(qm)
    assert len(kinds) == 2 * 6 + 2 and set(kinds.values()) == {"static"}
    with torch.no_grad():
        out = qm(X).logits
    assert torch.isfinite(out).all() and out.shape == ref.shape
    # calibrated activations: the logits within int8's rounding of fp32 (measured 3.0 %; 1.0 uncalibrated,
    # 8 % calibrated on silence)
    assert 0.015 < float((out - ref).norm() / ref.norm()) < 0.06
    loaded, rec = _save_load(qm, tmp_path / "static", "int8-static")
    with torch.no_grad():
        assert torch.equal(loaded(X).logits, out)
    # Linear weights int8 (+ per-row fp32 scale, int32 zero point); the conv front end, a third of this tiny
    # 2-layer model, stays fp32
    linear = sum(e["in_features"] * e["out_features"] for e in rec["quantized_linears"].values())
    payload = safetensors_payload(tmp_path / "static" / "variant.safetensors")
    assert payload < rec["params"] * 4 - 2.5 * linear


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_variants(tmp_path: Path, dtype: str) -> None:
    model = q.apply_half(tiny_model(layers=2), q.HalfConfig(dtype))
    assert all(p.dtype == getattr(torch, dtype) for p in model.parameters())
    loaded, rec = _save_load(model, tmp_path / dtype, "fp16" if dtype == "float16" else "bf16")
    assert rec["storage"] == "hf" and rec["compute_dtype"] == dtype
    assert rec["size_mb"] == pytest.approx(rec["params"] * 2 / 1e6, rel=0.02)  # 2 bytes a weight as it runs
    assert safetensors_payload(tmp_path / dtype / "model.safetensors") == 2 * rec["params"]  # 2 bytes a weight
    assert next(loaded.parameters()).dtype == getattr(torch, dtype)
    xx = X.to(getattr(torch, dtype))
    with torch.no_grad():
        assert torch.equal(loaded(xx).logits, model(xx).logits)


def test_bf16_autocast_keeps_fp32_weights_and_runs_bf16_kernels() -> None:
    import copy

    model = tiny_model(layers=2)
    with torch.no_grad():
        ref = model(X).logits
    am = q.apply_autocast(model, q.AutocastConfig())
    assert q.autocast_dtype(am) == "bfloat16" and type(am).__name__ == "AutocastWav2Vec2ForCTC"
    assert all(p.dtype == torch.float32 for p in am.parameters())  # the size does not change
    assert am.config is model.config and callable(am._get_feat_extract_output_lengths)
    with torch.no_grad():
        out = am(X).logits
        again = copy.deepcopy(am)(X).logits  # the autocast lives in the class, so copies keep it
    assert out.dtype == torch.bfloat16 and again.dtype == torch.bfloat16
    assert am.config._attn_implementation == model.config._attn_implementation  # the model's own (SDPA)
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max()  # bf16 rounding, not another model
    assert q.apply_autocast(am, q.AutocastConfig()) is am  # applying twice changes nothing
    eager = apply_stages(tiny_model(layers=2), parse_recipe("bf16-autocast-eager"))
    with torch.no_grad():
        out_eager = eager(X).logits  # the earlier CPU default, kept to compare: the same model, unfused attention
    assert eager.config._attn_implementation == "eager"
    assert (out_eager.float() - out.float()).abs().max() < 0.05 * ref.abs().max()
    with pytest.raises(FootprintError, match="unknown dtype"):
        q.apply_autocast(tiny_model(layers=1), q.AutocastConfig("int4"))


def test_bf16_autocast_guards_a_wrong_grouped_conv(monkeypatch) -> None:  # noqa: ANN001
    """Where the CPU's bf16 grouped conv is wrong (measured on an AMX Xeon), the positional conv runs in fp32."""
    model = tiny_model(layers=1)
    with torch.no_grad():
        ref = model(X).logits
    monkeypatch.setattr(q, "cpu_grouped_conv_bf16_ok", lambda: False)
    am = q.apply_autocast(model, q.AutocastConfig())
    pos = am.wav2vec2.encoder.pos_conv_embed
    assert type(pos.conv).__name__.startswith("Fp32OnCpu") and pos.conv.weight.dtype == torch.float32
    with torch.no_grad():
        out = am(X).logits.float()
        pos_out = pos(torch.randn(1, 20, 32))
    assert pos_out.dtype == torch.float32
    assert (out - ref).norm() < 0.05 * ref.norm()
    assert set(am.state_dict()) == set(tiny_model(layers=1).state_dict())  # weights and names unchanged


def test_bf16_weights_on_cpu_guard_a_wrong_grouped_conv(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """``bf16`` on a CPU whose bf16 grouped conv is wrong: the positional conv computes in fp32 from the bf16
    weights and hands bf16 on; the guard survives ``model.to`` (the transcriber) and a save/load."""
    model = tiny_model(layers=1)
    with torch.no_grad():
        ref = model(X).logits
    monkeypatch.setattr(q, "cpu_grouped_conv_bf16_ok", lambda: False)
    bf = apply_stages(model, parse_recipe("bf16")).to(torch.bfloat16)
    conv = bf.wav2vec2.encoder.pos_conv_embed.conv
    assert type(conv).__name__.startswith("Fp32OnCpu") and conv.weight.dtype == torch.bfloat16
    seen: list[torch.dtype] = []
    hook = conv.register_forward_hook(lambda m, inp, out: seen.append(out.dtype))
    calls: list[torch.dtype] = []
    real = torch.nn.Conv1d._conv_forward
    monkeypatch.setattr(torch.nn.Conv1d, "_conv_forward",
                        lambda self, x, w, b: calls.append(w.dtype) or real(self, x, w, b))
    with torch.no_grad():
        out = bf(X.bfloat16()).logits.float()
    hook.remove()
    assert seen == [torch.bfloat16] and torch.float32 in calls  # fp32 kernel inside, bf16 out
    assert (out - ref).norm() < 0.05 * ref.norm()
    loaded, _ = _save_load(bf, tmp_path / "bf16", "bf16")
    assert type(loaded.wav2vec2.encoder.pos_conv_embed.conv).__name__.startswith("Fp32OnCpu")


def test_bf16_then_channels_last_front_end_stays_bf16() -> None:
    model = tiny_model(layers=1)
    with torch.no_grad():
        ref = model(X).logits
    bf = apply_stages(model, parse_recipe("bf16+front-end-bf16"))
    with torch.no_grad():
        feats = bf.wav2vec2.feature_extractor(X.bfloat16())
        out = bf(X.bfloat16()).logits.float()
    assert feats.dtype == torch.bfloat16  # the feature projection's dtype, not fp32
    assert (out - ref).norm() < 0.05 * ref.norm()


def test_torchao_recipe_needs_torchao(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without torchao (the test extras install it, so its absence is simulated): a one-line refusal naming it."""
    import sys

    from compress.methods.registry import resolve_stage

    for name in [n for n in sys.modules if n == "torchao" or n.startswith("torchao.")] + ["torchao"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it (or a submodule) now raises ImportError
    assert not q.torchao_available()
    with pytest.raises(FootprintError, match="torchao"):
        resolve_stage("int8-weight-only-torchao")
    with pytest.raises(FootprintError, match="torchao"):
        q.apply_torchao_int8_weight_only(tiny_model(layers=1), q.TorchaoInt8WeightOnlyConfig())


def test_torchao_int8_weight_only_shrinks_the_model() -> None:
    if not q.torchao_available():
        pytest.skip("torchao not installed (pip install -e '.[torchao]')")
    m = q.apply_torchao_int8_weight_only(tiny_model(layers=1), q.TorchaoInt8WeightOnlyConfig())
    assert memory_bytes(m) < 0.7 * count_params(m) * 4


def test_variant_json_fields(tmp_path: Path) -> None:
    qm = q.apply_int8_dynamic(tiny_model(layers=2), q.Int8DynamicConfig())
    save_variant(qm, tmp_path / "v", recipe="int8-dynamic", stages=[{"name": "int8-dynamic", "config": {}}],
                 do_normalize=True, source={"spec": "x", "hash": "sha256:abc"})
    rec = json.loads((tmp_path / "v" / "variant.json").read_text())
    for key in ("recipe", "config", "source_hash", "params", "size_bytes", "size_on_disk_mb", "memory_mb",
                "sparsity", "conv_layers", "transformer_layers", "versions", "storage"):
        assert key in rec, key
    assert rec["conv_layers"] == 7 and rec["transformer_layers"] == 2
    assert rec["versions"]["torch"] == torch.__version__


def test_int8_dynamic_packs_for_the_chosen_engine_and_restores_the_global_one() -> None:
    import torch

    from compress.methods.quantize import Int8DynamicConfig, apply_int8_dynamic, export_quantized, rebuild_quantized
    from tests.helpers import tiny_model

    before = torch.backends.quantized.engine
    q = apply_int8_dynamic(tiny_model(), Int8DynamicConfig(engine="fbgemm"))
    assert torch.backends.quantized.engine == before and q._footprint_quantized_engine == "fbgemm"
    tensors, layout = export_quantized(q)
    assert {e["engine"] for e in layout.values()} == {"fbgemm"}
    again = rebuild_quantized(tiny_model(), layout, tensors)
    assert again._footprint_quantized_engine == "fbgemm" and torch.backends.quantized.engine == before


def test_bf16_training_on_cpu_guards_the_positional_conv(monkeypatch) -> None:  # noqa: ANN001
    """Teacher training under --amp bf16 on a CPU whose bf16 grouped conv is wrong keeps that conv in fp32."""
    from compress.train_teacher import TeacherTrainConfig, _CTCTask

    monkeypatch.setattr(q, "cpu_grouped_conv_bf16_ok", lambda: False)
    model = tiny_model(layers=1)
    _CTCTask(TeacherTrainConfig(out_dir="unused", amp="bf16"), model, None, None, torch.device("cpu"), False, None)
    assert type(model.wav2vec2.encoder.pos_conv_embed.conv).__name__.startswith("Fp32OnCpu")
    other = tiny_model(layers=1)
    _CTCTask(TeacherTrainConfig(out_dir="unused", amp="none"), other, None, None, torch.device("cpu"), False, None)
    assert not type(other.wav2vec2.encoder.pos_conv_embed.conv).__name__.startswith("Fp32OnCpu")


@pytest.mark.parametrize("caps, has", [
    ({"architecture": "x86_64", "avx2": True}, False),                       # AVX2 only (an EPYC before Zen 4)
    ({"architecture": "x86_64", "avx512_f": True}, False),                   # AVX-512 without VNNI (Skylake-SP)
    ({"architecture": "x86_64", "avx512_vnni": True}, True),
    ({"architecture": "x86_64", "avx_vnni": True}, True),                    # AVX-VNNI (client cores)
    ({"architecture": "x86_64", "amx_int8": True}, True),
    ({"architecture": "aarch64", "neon": True}, True),                       # no vpmaddubsw, no saturation
])
def test_int8_ranges_are_seven_bits_only_where_the_cpu_lacks_an_int8_dot_product(monkeypatch: pytest.MonkeyPatch,
                                                                                 caps: dict, has: bool) -> None:
    from compress.methods.int8_inductor import Int8InductorConfig
    from compress.methods.openvino import OvConfig
    from compress.methods.ort import OrtConfig

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    assert q.cpu_has_int8_dot_product() is has
    for cls in (Int8InductorConfig, OrtConfig, OvConfig):
        assert q.resolve_reduce_range(cls()).reduce_range is (not has)
        assert q.resolve_reduce_range(cls(reduce_range=has)).reduce_range is has  # a choice given is kept
