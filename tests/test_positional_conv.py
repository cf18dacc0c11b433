"""compress/methods/positional_conv.py: the positional conv exported as a channels-last conv2d with merged groups
computes what the grouped conv1d computes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from compress.methods import positional_conv
from tests.helpers import tiny_model


@pytest.mark.parametrize(("channels", "groups", "merge"), [(192, 16, 2), (1024, 16, 1), (32, 4, 2), (48, 16, 8),
                                                           (20, 4, 4)])
def test_groups_are_merged_until_each_has_16_channels(channels: int, groups: int, merge: int) -> None:
    assert positional_conv.merge_factor(channels, groups) == merge


@pytest.mark.parametrize(("channels", "groups", "kernel", "frames"), [(192, 16, 64, 37), (32, 4, 16, 9),
                                                                     (64, 2, 5, 11), (48, 16, 7, 20)])
def test_the_conv2d_equals_the_grouped_conv1d(channels: int, groups: int, kernel: int, frames: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, channels, frames)
    w, b = torch.randn(channels, channels // groups, kernel), torch.randn(channels)
    ref = F.conv1d(x, w, b, padding=kernel // 2, groups=groups)
    out = positional_conv.grouped_conv1d(x, w, b, kernel // 2, groups)
    assert out.shape == ref.shape
    # fp32 rounding only (measured up to 2.6e-7 relative); a weight that let the merged groups read each other's
    # channels would be off by the whole signal
    assert float((out - ref).norm() / ref.norm()) < 1e-6


def test_the_encoder_exports_it_for_every_length_and_keeps_its_own_conv() -> None:
    encoder = tiny_model(layers=1).wav2vec2.encoder
    conv = encoder.pos_conv_embed.conv
    cls = type(conv)
    torch.manual_seed(1)
    frames = torch.export.Dim("frames", min=2, max=1000)
    probe = torch.randn(2, 23, 32)
    with torch.no_grad():
        before = encoder(probe).last_hidden_state
        with positional_conv.exported_channels_last(encoder):
            graph = torch.export.export(encoder, (torch.randn(2, 23, 32),), dynamic_shapes=({1: frames},),
                                        strict=False).module()
        assert type(conv) is cls
        assert torch.equal(encoder(probe).last_hidden_state, before)  # the model runs its own conv as before
        convs = [n for n in graph.graph.nodes if n.op == "call_function" and "conv" in str(n.target)]
        assert [(str(n.target), n.args[6]) for n in convs] == [("aten.conv2d.default", 2)]  # 4 groups merged by 2
        for length in (23, 16, 32, 33, 2):  # multiples of the padding step and not
            hidden = torch.randn(2, length, 32)
            ref = encoder(hidden).last_hidden_state
            assert float((graph(hidden)[0] - ref).norm() / ref.norm()) < 1e-6
