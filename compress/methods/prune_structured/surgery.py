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
from core.errors import FootprintError

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
        new.weight.requires_grad_(old.weight.requires_grad)
        if old.bias is not None:
            new.bias.copy_(old.bias.detach() if rows is None else old.bias.detach()[rows])
            new.bias.requires_grad_(old.bias.requires_grad)
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


def _conv1d(old: nn.Conv1d, out_idx: torch.Tensor | None = None, in_idx: torch.Tensor | None = None
            ) -> nn.Conv1d:
    """``old`` with only the output channels ``out_idx`` / input channels ``in_idx``: everything else as it was
    (device, dtype, stride, padding, dilation, padding mode, bias, trainability), so a GPU or bf16 model stays
    one piece."""
    if old.groups != 1:  # a channel cut of a grouped conv would have to keep the groups even
        raise FootprintError(f"prune-structured: a grouped conv ({old.groups} groups) cannot be thinned")
    w = old.weight.detach()
    w = w if out_idx is None else w[out_idx]
    w = w if in_idx is None else w[:, in_idx]
    new = nn.Conv1d(w.shape[1], w.shape[0], old.kernel_size, stride=old.stride, padding=old.padding,
                    dilation=old.dilation, groups=old.groups, bias=old.bias is not None,
                    padding_mode=old.padding_mode, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        new.weight.requires_grad_(old.weight.requires_grad)
        if old.bias is not None:
            new.bias.copy_(old.bias.detach() if out_idx is None else old.bias.detach()[out_idx])
            new.bias.requires_grad_(old.bias.requires_grad)
    return new


def _prune_conv_channels(model: nn.Module, i: int, kept: list[int]) -> None:
    convs = model.wav2vec2.feature_extractor.conv_layers
    if not 0 <= i < len(convs) - 1:  # the last conv feeds the feature projection, not another conv
        raise FootprintError(f"--conv-layers {i}: out of range (0 to {len(convs) - 2}: each thinned conv layer "
                             "must feed another)")
    block, nxt = convs[i], convs[i + 1]
    idx = torch.tensor(kept, dtype=torch.long, device=block.conv.weight.device)
    with torch.no_grad():
        block.conv = _conv1d(block.conv, out_idx=idx)
        norm = getattr(block, "layer_norm", None)  # LayerNorm over channels ("layer") or GroupNorm(C, C) ("group")
        if norm is not None and getattr(norm, "weight", None) is not None:
            norm.weight = nn.Parameter(norm.weight[idx].clone(), requires_grad=norm.weight.requires_grad)
            norm.bias = nn.Parameter(norm.bias[idx].clone(), requires_grad=norm.bias.requires_grad)
            if isinstance(norm, nn.LayerNorm):
                norm.normalized_shape = (len(kept),)
            elif isinstance(norm, nn.GroupNorm):
                norm.num_groups = norm.num_channels = len(kept)
        nxt.conv = _conv1d(nxt.conv, in_idx=idx)
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
