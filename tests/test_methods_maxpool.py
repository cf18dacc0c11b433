"""The 4-conv max-pool variant: same frame rate for any input length, fewer parameters and FLOPs, and a
save/load that rebuilds the structure (a plain from_pretrained refuses the directory)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_methods_support import tiny_model

from core.errors import FootprintError
from core.model_stats import model_stats
from compress.methods.maxpool import MaxPoolConfig, MaxPoolFeatureLayer, apply_maxpool
from compress.methods.storage import load_variant_dir, save_variant


@pytest.mark.parametrize("n", [400, 1234, 5000, 16000, 16001, 23456, 48000])
def test_frame_rate_unchanged(n: int) -> None:
    teacher = tiny_model(layers=2)
    mp = apply_maxpool(tiny_model(layers=2), MaxPoolConfig(conv_layers=4))
    x = torch.randn(1, n)
    with torch.no_grad():
        t, m = teacher(x).logits.shape[1], mp(x).logits.shape[1]
    assert t == m == int(mp._get_feat_extract_output_lengths(torch.tensor(n)))


def test_structure_params_and_flops(tmp_path: Path) -> None:
    teacher = tiny_model(layers=2)
    ref = model_stats(teacher)
    mp = apply_maxpool(tiny_model(layers=2), MaxPoolConfig(conv_layers=4))
    convs = mp.wav2vec2.feature_extractor.conv_layers
    assert [type(c) is MaxPoolFeatureLayer for c in convs] == [False] * 4 + [True] * 3
    for i in range(4):  # kept conv layers are the model's own
        assert torch.equal(convs[i].conv.weight, teacher.wav2vec2.feature_extractor.conv_layers[i].conv.weight)
    st = model_stats(mp)
    dropped = sum(p.numel() for i in (4, 5, 6) for p in teacher.wav2vec2.feature_extractor.conv_layers[i].parameters())
    assert st["params"] == ref["params"] - dropped
    assert st["conv_layers"] == 4 and st["transformer_layers"] == 2
    assert st["conv_flops_per_s"] < ref["conv_flops_per_s"]
    assert st["transformer_flops_per_s"] == pytest.approx(ref["transformer_flops_per_s"])

    rec = save_variant(mp, tmp_path / "mp", recipe="maxpool-conv4-untrained", stages=[], do_normalize=True,
                       trained=False)
    assert rec["storage"] == "tensors" and rec["maxpool_layers"] == [4, 5, 6] and rec["trained"] is False
    loaded, _, _ = load_variant_dir(tmp_path / "mp")
    x = torch.randn(2, 9000)
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, mp(x).logits)
    from transformers import Wav2Vec2ForCTC

    with pytest.raises(OSError):  # no model.safetensors: never silently random conv layers
        Wav2Vec2ForCTC.from_pretrained(str(tmp_path / "mp"))


def test_channel_change_cannot_be_pooled() -> None:
    model = tiny_model(layers=1, conv_dim=(16, 16, 16, 32, 32, 32, 32))
    with pytest.raises(FootprintError, match="conv layer 3 maps 16 -> 32"):
        apply_maxpool(model, MaxPoolConfig(conv_layers=3))
    apply_maxpool(model, MaxPoolConfig(conv_layers=4))  # 4-6 keep 32 channels: fine
