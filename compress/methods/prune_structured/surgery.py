"""Cutting the plan into the model, so that what remains is dense and smaller, and rebuilding that structure
from a config when a pruned variant is loaded.

Heads: rows of q/k/v (and their biases) and columns of out_proj, head by head; the head size stays, so the
attention's scaling is unchanged.  Neurons: rows of the first feed-forward Linear, columns of the second.  Conv
channels: output channels of conv i (and its norm's per-channel affine) and input channels of conv i+1; a layer
norm over channels then normalises over the kept ones only (not exact: the distillation that follows absorbs it).

The structure is recorded in the config: ``conv_dim`` (Hugging Face builds it natively) and two keys of ours,
``layer_num_heads`` and ``layer_intermediate_size`` (one entry per layer), which :func:`shrink_to_config` applies
to a freshly built ``Wav2Vec2ForCTC`` before the weights are loaded.  A plain ``from_pretrained`` would build
full-size layers; the suite stores such a variant with its ``tensors`` storage so that it refuses instead
(``compress.methods.storage``).
"""
from __future__ import annotations

import torch
from torch import nn

from compress.methods.prune_structured.config import PrunePlan

HEADS_KEY = "layer_num_heads"
FFN_KEY = "layer_intermediate_size"


def has_pruned_structure(config: object) -> bool:
    return bool(getattr(config, HEADS_KEY, None) or getattr(config, FFN_KEY, None))


def _linear(old: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    w = old.weight.detach()
    w = w if rows is None else w[rows]
    w = w if cols is None else w[:, cols]
    new = nn.Linear(w.shape[1], w.shape[0], bias=old.bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if old.bias is not None:
            new.bias.copy_(old.bias.detach() if rows is None else old.bias.detach()[rows])
    return new


def _head_rows(kept: list[int], head_dim: int) -> torch.Tensor:
    return torch.tensor([h * head_dim + d for h in kept for d in range(head_dim)], dtype=torch.long)


def prune_heads(attn: nn.Module, kept: list[int]) -> None:
    rows = _head_rows(kept, attn.head_dim)
    attn.q_proj, attn.k_proj, attn.v_proj = (_linear(getattr(attn, n), rows=rows)
                                             for n in ("q_proj", "k_proj", "v_proj"))
    attn.out_proj = _linear(attn.out_proj, cols=rows)
    attn.num_heads = len(kept)


def prune_ffn(ff: nn.Module, kept: list[int]) -> None:
    idx = torch.tensor(kept, dtype=torch.long)
    ff.intermediate_dense = _linear(ff.intermediate_dense, rows=idx)
    ff.output_dense = _linear(ff.output_dense, cols=idx)


def _prune_conv_channels(model: nn.Module, i: int, kept: list[int]) -> None:
    convs = model.wav2vec2.feature_extractor.conv_layers
    idx = torch.tensor(kept, dtype=torch.long)
    block, nxt = convs[i], convs[i + 1]
    with torch.no_grad():
        old = block.conv
        new = nn.Conv1d(old.in_channels, len(kept), old.kernel_size, old.stride, bias=old.bias is not None)
        new.weight.copy_(old.weight[idx])
        if old.bias is not None:
            new.bias.copy_(old.bias[idx])
        block.conv = new
        norm = getattr(block, "layer_norm", None)  # LayerNorm over channels ("layer") or GroupNorm(C, C) ("group")
        if norm is not None and getattr(norm, "weight", None) is not None:
            norm.weight = nn.Parameter(norm.weight[idx].clone())
            norm.bias = nn.Parameter(norm.bias[idx].clone())
            if isinstance(norm, nn.LayerNorm):
                norm.normalized_shape = (len(kept),)
            elif isinstance(norm, nn.GroupNorm):
                norm.num_groups = norm.num_channels = len(kept)
        old = nxt.conv
        new = nn.Conv1d(len(kept), old.out_channels, old.kernel_size, old.stride, bias=old.bias is not None)
        new.weight.copy_(old.weight[:, idx])
        if old.bias is not None:
            new.bias.copy_(old.bias)
        nxt.conv = new
        block.out_conv_dim = len(kept)
        nxt.in_conv_dim = len(kept)
    dims = list(model.config.conv_dim)
    dims[i] = len(kept)
    model.config.conv_dim = dims


def apply_plan(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """Remove what the plan leaves out, in place; the config records the new structure."""
    layers = model.wav2vec2.encoder.layers
    for layer, heads, ffn in zip(layers, plan.heads, plan.ffn):
        prune_heads(layer.attention, heads)
        prune_ffn(layer.feed_forward, ffn)
    for i, kept in sorted(plan.conv.items()):
        _prune_conv_channels(model, i, kept)
    setattr(model.config, HEADS_KEY, [len(h) for h in plan.heads])
    setattr(model.config, FFN_KEY, [len(f) for f in plan.ffn])
    return model


def shrink_to_config(model: nn.Module) -> nn.Module:
    """Give a freshly built model the per-layer head counts and feed-forward sizes its config records (the
    weights are loaded afterwards)."""
    cfg = model.config
    heads = getattr(cfg, HEADS_KEY, None) or [cfg.num_attention_heads] * cfg.num_hidden_layers
    ffn = getattr(cfg, FFN_KEY, None) or [cfg.intermediate_size] * cfg.num_hidden_layers
    for layer, n_heads, n_ffn in zip(model.wav2vec2.encoder.layers, heads, ffn):
        prune_heads(layer.attention, list(range(int(n_heads))))
        prune_ffn(layer.feed_forward, list(range(int(n_ffn))))
    return model
