"""Sensitivity pruning: the paper's schedule mapped to other depths, exact thresholds, the weight-normed
positional conv, per-layer and global sparsity, and sparse storage."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_methods_support import tiny_model
from torch.nn.utils import parametrize, prune

from compress.methods.prune import (
    PruneConfig,
    SensitivityPruning,
    apply_prune,
    prune_plan,
    transformer_sensitivity,
)
from compress.methods.storage import load_variant_dir, save_variant


def test_schedule_matches_the_paper_and_maps_proportionally() -> None:
    cfg = PruneConfig()
    assert [transformer_sensitivity(i, 24, cfg) for i in range(24)] == [0.0] * 3 + [0.3] * 14 + [0.4] * 7
    assert [transformer_sensitivity(i, 12, cfg) for i in range(12)] == [0.0] * 2 + [0.3] * 7 + [0.4] * 3
    assert [transformer_sensitivity(i, 4, cfg) for i in range(4)] == [0.0, 0.3, 0.3, 0.4]


def test_sensitivity_pruning_threshold_is_sensitivity_times_std() -> None:
    lin = torch.nn.Linear(50, 40)
    w = lin.weight.detach().clone()
    SensitivityPruning.apply(lin, "weight", sensitivity=0.5)
    assert isinstance(lin.weight_mask, torch.Tensor)
    prune.remove(lin, "weight")
    keep = w.abs() > 0.5 * w.std()
    assert torch.equal(lin.weight != 0, keep)
    assert torch.equal(lin.weight[keep], w[keep])


def test_prune_tiny_model_per_layer(tmp_path: Path) -> None:
    model = tiny_model(layers=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pos = model.wav2vec2.encoder.pos_conv_embed.conv
    pos_w = pos.weight.detach().clone()
    plan = prune_plan(model, PruneConfig())
    assert plan["wav2vec2.encoder.layers.0.attention.q_proj"] == 0.0  # layer 0 of 4 ~ layers 0-2 of 24: dense
    assert plan["wav2vec2.encoder.layers.3.feed_forward.output_dense"] == 0.4
    assert plan["wav2vec2.feature_extractor.conv_layers.0.conv"] == 0.1
    model = apply_prune(model, PruneConfig())
    rep = model.pruning_report
    # exact Distiller rule per tensor
    for name, sens in plan.items():
        key = f"{name}.weight"
        if "pos_conv" in name:
            continue
        w0 = before[key]
        w1 = model.state_dict()[key]
        assert torch.equal(w1 != 0, (w0.abs() > sens * w0.std()) if sens > 0 else (w0 != 0)), name
        assert rep["per_layer"][name] == pytest.approx(float((w1 == 0).float().mean()), abs=1e-6)
    assert rep["per_layer"]["wav2vec2.encoder.layers.0.attention.q_proj"] == 0.0
    assert 0.2 < rep["per_layer"]["wav2vec2.encoder.layers.1.attention.q_proj"] < 0.3  # ~23.6 % for a normal
    # biases and norms untouched
    for key in ("wav2vec2.encoder.layers.2.attention.q_proj.bias", "wav2vec2.encoder.layer_norm.weight",
                "lm_head.weight", "wav2vec2.feature_projection.projection.weight"):
        assert torch.equal(model.state_dict()[key], before[key]), key
    # positional conv: pruned on its effective weight, weight norm put back (g*v/|v| reproduces it)
    assert parametrize.is_parametrized(pos, "weight")
    thr = 0.1 * pos_w.std()
    assert torch.equal(pos.weight == 0, pos_w.abs() <= thr)
    assert torch.equal(pos.parametrizations.weight.original1 == 0, pos_w.abs() <= thr)
    assert torch.allclose(pos.weight[pos_w.abs() > thr], pos_w[pos_w.abs() > thr], rtol=1e-5, atol=1e-7)


def test_sparse_storage_is_smaller_and_exact(tmp_path: Path) -> None:
    model = apply_prune(tiny_model(layers=4, hidden_size=64, intermediate_size=128),
                        PruneConfig(transformer_schedule=((0, 1.0),)))
    x = torch.randn(1, 8000)
    with torch.no_grad():
        ref = model(x).logits
    dense = save_variant(model, tmp_path / "dense", recipe="prune-sensitivity", stages=[], do_normalize=True)
    sparse = save_variant(model, tmp_path / "sparse", recipe="prune-sensitivity", stages=[], do_normalize=True,
                          sparse=True)
    assert dense["storage"] == "hf" and sparse["storage"] == "tensors"
    assert sparse["size_bytes"] < 0.85 * dense["size_bytes"]
    assert dense["sparsity"] == sparse["sparsity"] > 0.3
    assert dense["pruned_tensors_sparsity"] > 0.55  # |w| <= 1 std: ~68 % of a normal
    for d in ("dense", "sparse"):
        loaded, _, rec = load_variant_dir(tmp_path / d)
        with torch.no_grad():
            assert torch.allclose(loaded(x).logits, ref, atol=1e-5), d
        assert rec["pruning"]["per_layer"]
    # the dense one is a plain Hugging Face directory with the zeros in it
    from transformers import Wav2Vec2ForCTC

    plain = Wav2Vec2ForCTC.from_pretrained(str(tmp_path / "dense"))
    w = plain.wav2vec2.encoder.layers[1].attention.q_proj.weight
    assert float((w == 0).float().mean()) > 0.55
    rec = json.loads((tmp_path / "sparse" / "variant.json").read_text())
    assert rec["pruning"]["sensitivity"]["wav2vec2.feature_extractor.conv_layers.0.conv"] == 0.1
