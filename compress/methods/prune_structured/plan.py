"""Which units go.  The transformer FLOPs the target removes are shared by the two families in proportion to
their size (attention: q/k/v/out projections + attention scores; feed-forward: both Linears), and within a
family the least important units go first, across all layers.

Why not one ranking of heads and neurons together: their scores are norms of what they add to the residual, and
a norm is sub-additive, so a 48-dimension head scores less than the sum of 48 single-neuron scores of the same
total effect, and a joint ranking per MAC cuts whole heads first (at a 50 % target it leaves about one head per
layer).  No cheap score compares the two fairly (DPHuBERT learns the split by training with masks), so the split
is left proportional and the importance decides *where* each family is cut.  Conv channels: the same share in
each chosen conv layer, the most important kept.
"""
from __future__ import annotations

import torch
from torch import nn

from compress.methods.prune_structured.config import PrunePlan, StructuredPruneConfig
from compress.methods.prune_structured.importance import Importance
from core.errors import FootprintError
from core.model_info import MEAN_UTTERANCE_S, SAMPLE_RATE, model_info


def _frames(model: nn.Module, utterance_s: float = MEAN_UTTERANCE_S) -> int:
    n = torch.tensor(int(round(utterance_s * SAMPLE_RATE)))
    return int(model._get_feat_extract_output_lengths(n))


def _prune_family(scores: list[torch.Tensor], cost: float, budget: float, floor: int) -> list[list[int]]:
    """Remove the least important units (across layers) until the family costs at most ``budget`` MACs per
    frame, leaving at least ``floor`` per layer; returns the kept indices per layer."""
    kept = [list(range(len(s))) for s in scores]
    order = sorted((float(s), li, j) for li, layer in enumerate(scores) for j, s in enumerate(layer))
    current = cost * sum(len(k) for k in kept)
    for _, li, j in order:
        if current <= budget:
            break
        if len(kept[li]) > floor:
            kept[li].remove(j)
            current -= cost
    return kept


def plan_pruning(model: nn.Module, imp: Importance, cfg: StructuredPruneConfig) -> PrunePlan:
    """The plan for ``cfg.flops_keep`` of the transformer FLOPs (as core.model_info counts them, per frame of a
    mean-length utterance)."""
    hidden = int(model.config.hidden_size)
    frames = _frames(model)
    info = model_info(model)
    total = info.transformer_flops_per_s * info.utterance_s / 2 / frames  # MACs per frame
    layers = list(model.wav2vec2.encoder.layers)
    head_dims = {layer.attention.head_dim for layer in layers}
    if len(head_dims) != 1:
        raise FootprintError("prune-structured: the layers' head sizes differ; prune from an unpruned model")
    head_dim = head_dims.pop()
    head_cost = 4 * hidden * head_dim + 2 * frames * head_dim  # q, k, v, out + its share of QK^T and AV
    ffn_cost = 2 * hidden
    attn_full = head_cost * sum(len(s) for s in imp.heads)
    ffn_full = ffn_cost * sum(len(s) for s in imp.ffn)
    fixed = total - attn_full - ffn_full  # feature projection, positional conv, CTC head: not pruned
    target = cfg.flops_keep * total
    share = max(0.0, (target - fixed) / (attn_full + ffn_full))
    heads = _prune_family(imp.heads, head_cost, share * attn_full, cfg.min_heads)
    attn_now = head_cost * sum(len(h) for h in heads)
    ffn = _prune_family(imp.ffn, ffn_cost, target - fixed - attn_now, cfg.min_ffn)  # whatever attention left
    reached = fixed + attn_now + ffn_cost * sum(len(f) for f in ffn)
    if reached > target * 1.001:
        raise FootprintError(f"prune-structured: --flops-keep {cfg.flops_keep} is out of reach with at least "
                             f"{cfg.min_heads} head(s) and {cfg.min_ffn} neurons per layer "
                             f"(lowest reachable: {reached / total:.3f})")
    conv: dict[int, list[int]] = {}
    if cfg.conv_keep < 1:
        for i, scores in imp.conv.items():
            k = max(1, round(cfg.conv_keep * len(scores)))
            conv[i] = sorted(torch.topk(scores, k).indices.tolist())
    return PrunePlan(heads=heads, ffn=ffn, conv=conv, transformer_flops_before=info.transformer_flops_per_s,
                     transformer_flops_target=cfg.flops_keep * info.transformer_flops_per_s)
