"""``front-end-bf16``: the channels-last front end gives the original features (exactly in fp32, within bf16's
rounding in bf16) for every block kind, chains after int8, says what it is, and refuses what it cannot do in one
line."""
from __future__ import annotations

import pytest
import torch
from test_methods_support import tiny_model

from compress.methods.front_end import front_end_dtype
from compress.methods.registry import apply_stages, parse_recipe, resolve_stage
from core.errors import FootprintError


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _front_end(recipe: str, **overrides) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN003
    """Features of the recipe's front end and of the original one, on odd lengths and a batch of two."""
    ref = tiny_model(layers=1, **overrides)
    model = apply_stages(tiny_model(layers=1, **overrides), parse_recipe(recipe))
    x = torch.randn(2, 7777)
    with torch.inference_mode():
        return model.wav2vec2.feature_extractor(x), ref.wav2vec2.feature_extractor(x)


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_channels_last_layout_alone_is_exact(norm: str) -> None:
    method, cfg = resolve_stage("front-end-bf16", {"dtype": "float32"})
    ref = tiny_model(layers=1, feat_extract_norm=norm)
    model = method.apply(tiny_model(layers=1, feat_extract_norm=norm), cfg)
    x = torch.randn(2, 7777)
    with torch.inference_mode():
        out, want = model.wav2vec2.feature_extractor(x), ref.wav2vec2.feature_extractor(x)
    assert out.shape == want.shape and out.dtype == torch.float32
    assert torch.allclose(out, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_bf16_front_end_stays_close_and_hands_fp32_on(norm: str) -> None:
    out, want = _front_end("front-end-bf16", feat_extract_norm=norm)
    assert out.dtype == torch.float32 and out.shape == want.shape
    # bf16 keeps 8 bits of mantissa (~0.4 % per rounding): measured 1.22 % (layer) and 0.93 % (group) on this
    # seeded input; within 2x both ways, so an fp32 path (~1e-7) fails as surely as a wrong one
    measured = {"layer": 0.0122, "group": 0.0093}[norm]
    assert measured / 5 < _rel(out, want) < 2 * measured  # the lower bound tells bf16 from an fp32 path (~1e-7)


def test_max_pool_front_end_runs_channels_last() -> None:
    from compress.methods.maxpool import MaxPoolConfig, apply_maxpool

    ref = apply_maxpool(tiny_model(layers=1), MaxPoolConfig(conv_layers=4))
    method, cfg = resolve_stage("front-end-bf16", {"dtype": "float32"})
    model = method.apply(apply_maxpool(tiny_model(layers=1), MaxPoolConfig(conv_layers=4)), cfg)
    x = torch.randn(1, 9000)
    with torch.inference_mode():
        assert torch.allclose(model.wav2vec2.feature_extractor(x), ref.wav2vec2.feature_extractor(x), atol=1e-5,
                              rtol=1e-4)


def test_chains_after_int8_and_changes_only_the_front_end() -> None:
    int8 = apply_stages(tiny_model(layers=2), parse_recipe("int8-dynamic"))
    chain = apply_stages(tiny_model(layers=2), parse_recipe("int8-dynamic+front-end-bf16"))
    assert front_end_dtype(chain) == "bfloat16" and front_end_dtype(int8) is None
    x = torch.randn(2, 9000)
    mask = torch.ones(2, 9000, dtype=torch.long)
    mask[1, 6000:] = 0
    with torch.inference_mode():
        a, b = chain(x, attention_mask=mask).logits, int8(x, attention_mask=mask).logits
    assert a.shape == b.shape and _rel(a, b) < 0.05
    fp32 = tiny_model(layers=2).state_dict()
    assert all(torch.equal(fp32[k], v) for k, v in chain.state_dict().items() if "feature_extractor" in k)


def test_casting_the_model_to_fp32_keeps_the_bf16_front_end() -> None:
    """The transcriber calls ``model.to(variant.dtype)``: that must neither undo the recipe nor break it."""
    model = apply_stages(tiny_model(layers=1), parse_recipe("front-end-bf16"))
    x = torch.randn(1, 9000)
    with torch.inference_mode():
        before = model.wav2vec2.feature_extractor(x)
        after = model.to(torch.float32).wav2vec2.feature_extractor(x)
        exact = tiny_model(layers=1).wav2vec2.feature_extractor(x)
    assert torch.equal(before, after) and not torch.equal(after, exact)
    with torch.no_grad():  # new weights (a trainer's step, a load): the bf16 copy follows
        model.wav2vec2.feature_extractor.conv_layers[0].conv.weight.mul_(0)
        assert not torch.equal(model.wav2vec2.feature_extractor(x), after)


def test_variant_info_names_the_front_end_dtype() -> None:
    from compress.variants import _info

    info = _info(apply_stages(tiny_model(layers=1), parse_recipe("int8-dynamic+front-end-bf16")), {}, None)
    assert info["compute_dtype"] == "bfloat16-front-end"
    assert info["conv_layers"] == 7 and info["conv_flops_per_s"] > 0


def test_refusals_are_one_line() -> None:
    method, cfg = resolve_stage("front-end-bf16", {"dtype": "float16"})
    with pytest.raises(FootprintError, match="dtype must be one of"):
        method.apply(tiny_model(layers=1), cfg)
    model = tiny_model(layers=1)
    model._footprint_compiled = "front-end"
    with pytest.raises(FootprintError, match="use one of the two"):
        apply_stages(model, parse_recipe("front-end-bf16"))
    from compress.methods.compiled import compile_available

    if compile_available():
        with pytest.raises(FootprintError, match="already runs channels-last"):
            apply_stages(tiny_model(layers=1), parse_recipe("front-end-bf16+compile"))
    with pytest.raises(FootprintError, match="expected a Wav2Vec2ForCTC"):
        apply_stages(torch.nn.Linear(2, 2), parse_recipe("front-end-bf16"))


def test_ort_refuses_a_bf16_front_end() -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(FootprintError, match="export a float model"):
        apply_stages(tiny_model(layers=1), parse_recipe("front-end-bf16+ort-fp32"))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("pool", [False, True])
def test_windows_give_the_whole_batch_features_exactly(dtype: str, pool: bool) -> None:
    """Windows start on the frame grid and overlap by the receptive field, so every frame is computed from the same
    samples: equal to one call over the whole batch up to the order in which a conv kernel sums (it blocks by
    shape), at lengths on and just off a window's edge (the tiny model's front end: field 400 samples, stride 320,
    like the shipped ones).  Measured on an AVX512 EPYC: at most 7.2e-7 apart in fp32, bit-equal in bf16; a window
    one sample off the grid moves its edge frames by tenths."""
    from compress.methods.maxpool import MaxPoolConfig, apply_maxpool

    def build(recipe: str) -> torch.nn.Module:
        model = tiny_model(layers=1)
        if pool:
            model = apply_maxpool(model, MaxPoolConfig(conv_layers=4))
        windows = {"chunk_frames": 5, "chunk_group": 4} if recipe == "front-end-bf16" else {}
        method, cfg = resolve_stage(recipe, {"dtype": dtype, **windows})
        return method.apply(model, cfg)

    windowed, whole = build("front-end-bf16"), build("front-end-bf16-whole")
    assert windowed.wav2vec2.feature_extractor._footprint_front_end_windows.stride == 320
    assert whole.wav2vec2.feature_extractor._footprint_front_end_windows is None
    torch.manual_seed(0)
    for length in (400, 719, 720, 1680, 1681, 1999, 2000, 9000, 23457):  # 1680: exactly one window of 5 frames
        x = torch.randn(3, length)
        with torch.inference_mode():
            a, b = windowed.wav2vec2.feature_extractor(x), whole.wav2vec2.feature_extractor(x)
        # fp32: within 2x of the measured 7.2e-7; bf16: two bf16 steps at the largest feature (a kernel that sums
        # in another order rounds differently; bit-equal where measured)
        tolerance = 1.5e-6 if dtype == "float32" else 2 * 2.0**-7 * float(b.abs().max())
        assert a.shape == b.shape and float((a - b).abs().max()) <= tolerance, length


def test_windows_keep_the_conv_shapes_fixed_for_every_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the windows: whatever the batch and its lengths, the first conv sees a window of one length in
    groups of 8, 4, 2 or 1, so oneDNN builds its kernels once instead of for every new length."""
    import compress.methods.front_end as front_end

    model = apply_stages(tiny_model(layers=1), parse_recipe("front-end-bf16"))
    shapes: set[tuple[int, ...]] = set()
    real_conv2d = front_end.F.conv2d

    def recording_conv2d(x: torch.Tensor, weight: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # noqa: ANN002, ANN003
        if weight.shape[1] == 1:  # the first conv: its input is the audio
            shapes.add(tuple(x.shape))
        return real_conv2d(x, weight, *args, **kwargs)

    monkeypatch.setattr(front_end.F, "conv2d", recording_conv2d)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for batch in (1, 3, 8):
            for length in torch.randint(400, 60000, (6,), generator=gen).tolist():
                model.wav2vec2.feature_extractor(torch.randn(batch, length))
    window = 320 * (50 - 1) + 400
    assert shapes and shapes <= {(g, 1, 1, window) for g in (8, 4, 2, 1)}


def test_group_norm_front_ends_run_whole() -> None:
    """A group norm normalises over the whole utterance: windows would change the features, so none are cut."""
    model = apply_stages(tiny_model(layers=1, feat_extract_norm="group"), parse_recipe("front-end-bf16"))
    assert model.wav2vec2.feature_extractor._footprint_front_end_windows is None
    method, cfg = resolve_stage("front-end-bf16", {"chunk_group": 3})
    with pytest.raises(FootprintError, match="power of two"):
        method.apply(tiny_model(layers=1), cfg)
