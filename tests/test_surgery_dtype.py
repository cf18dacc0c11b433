"""Structured-pruning surgery keeps what it does not cut: every rebuilt layer has the device and dtype of the
one it replaces (a bf16 or GPU model does not come out mixed), and each new conv keeps the stride, padding,
dilation, padding mode and bias of the old one."""
from __future__ import annotations

import pytest
import torch
from test_methods_support import tiny_model

from compress.methods.prune_structured import PrunePlan, apply_plan
from core.errors import FootprintError

CONV_ATTRS = ("kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")


def _odd_convs(model: torch.nn.Module) -> None:
    """Give conv layers 1-3 padding, dilation and a padding mode other than the defaults (weights kept), so a
    surgery that rebuilt them with defaults would change the frame count or the values."""
    convs = model.wav2vec2.feature_extractor.conv_layers
    for i, mode in ((1, "replicate"), (2, "zeros"), (3, "reflect")):
        old = convs[i].conv
        new = torch.nn.Conv1d(old.in_channels, old.out_channels, old.kernel_size, old.stride, padding=1,
                              dilation=2, bias=i != 2, padding_mode=mode)
        with torch.no_grad():
            new.weight.copy_(old.weight)
            if new.bias is not None:
                new.bias.normal_(0, 0.05)
        convs[i].conv = new


def _silenced(dtype: torch.dtype) -> tuple[torch.nn.Module, PrunePlan]:
    """A tiny group-norm model (conv 1 has no norm) with a head, two neurons and two conv channels that add
    nothing, in ``dtype``, and the plan that removes exactly those."""
    model = tiny_model(layers=2, feat_extract_norm="group", do_stable_layer_norm=False)
    _odd_convs(model)
    layers = model.wav2vec2.encoder.layers
    hd = layers[1].attention.head_dim
    convs = model.wav2vec2.feature_extractor.conv_layers
    with torch.no_grad():
        layers[1].attention.out_proj.weight[:, hd:2 * hd] = 0
        layers[1].feed_forward.output_dense.weight[:, [3, 5]] = 0
        convs[2].conv.weight[:, [0, 7]] = 0
        convs[3].conv.weight[:, [1, 2]] = 0
    plan = PrunePlan(heads=[list(range(la.attention.num_heads)) for la in layers],
                     ffn=[list(range(la.feed_forward.intermediate_dense.out_features)) for la in layers])
    plan.heads[1].remove(1)
    plan.ffn[1] = [j for j in plan.ffn[1] if j not in (3, 5)]
    plan.conv = {1: [c for c in range(16) if c not in (0, 7)], 2: [c for c in range(16) if c not in (1, 2)]}
    return model.to(dtype).eval(), plan


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 0.05)])
def test_surgery_keeps_dtype_and_conv_settings(dtype: torch.dtype, atol: float) -> None:
    model, plan = _silenced(dtype)
    convs = model.wav2vec2.feature_extractor.conv_layers
    before_attrs = {i: {a: getattr(c.conv, a) for a in CONV_ATTRS} | {"bias": c.conv.bias is not None}
                    for i, c in enumerate(convs)}
    x = torch.randn(2, 12000, generator=torch.Generator().manual_seed(0)).to(dtype)
    with torch.no_grad():
        before = model(x).logits
    apply_plan(model, plan)
    assert {n: p.dtype for n, p in model.named_parameters() if p.dtype != dtype} == {}
    assert {n: b.dtype for n, b in model.named_buffers() if b.is_floating_point() and b.dtype != dtype} == {}
    for i, c in enumerate(convs):
        assert {a: getattr(c.conv, a) for a in CONV_ATTRS} | {"bias": c.conv.bias is not None} == before_attrs[i]
    assert convs[1].conv.out_channels == convs[2].conv.in_channels == 14
    assert convs[2].conv.out_channels == convs[3].conv.in_channels == 14
    with torch.no_grad():
        after = model(x).logits
    assert after.dtype == dtype and after.shape == before.shape
    assert torch.allclose(after.float(), before.float(), atol=atol, rtol=atol), (after - before).abs().max()


def test_surgery_keeps_the_device_and_trainability() -> None:
    """On the meta device (a stand-in for a GPU: no data, but every new tensor must be made there)."""
    model, plan = _silenced(torch.float32)
    model.wav2vec2.feature_extractor._freeze_parameters()
    model.to("meta")
    apply_plan(model, plan)
    assert {n for n, p in model.named_parameters() if p.device.type != "meta"} == set()
    convs = model.wav2vec2.feature_extractor.conv_layers
    assert not any(p.requires_grad for c in convs for p in c.parameters())
    assert model.wav2vec2.encoder.layers[1].attention.q_proj.weight.requires_grad


def test_a_conv_layer_out_of_range_is_one_line() -> None:
    model, plan = _silenced(torch.float32)
    plan.conv = {6: [0, 1]}
    with pytest.raises(FootprintError, match=r"^--conv-layers 6: out of range \(0 to 5"):
        apply_plan(model, plan)
