"""Which units go: heads and neurons removed in order of importance per multiply-accumulate until the model's
transformer FLOPs reach the target; conv channels by importance, the same share in each chosen layer."""
from __future__ import annotations

import heapq

import torch
from torch import nn

from compress.methods.prune_structured.config import PrunePlan, StructuredPruneConfig
from compress.methods.prune_structured.importance import Importance
from core.errors import FootprintError
from core.model_info import MEAN_UTTERANCE_S, SAMPLE_RATE, model_info


def _frames(model: nn.Module, utterance_s: float = MEAN_UTTERANCE_S) -> int:
    n = torch.tensor(int(round(utterance_s * SAMPLE_RATE)))
    return int(model._get_feat_extract_output_lengths(n))


def plan_pruning(model: nn.Module, imp: Importance, cfg: StructuredPruneConfig) -> PrunePlan:
    """The cheapest-to-lose units first: a unit's cost is its multiply-accumulates per frame (as core.model_info
    counts them for a mean-length utterance), its value its importance; removal stops at the FLOPs target."""
    hidden = int(model.config.hidden_size)
    frames = _frames(model)
    info = model_info(model)
    macs_per_frame = info.transformer_flops_per_s * info.utterance_s / 2 / frames
    target = cfg.flops_keep * macs_per_frame
    layers = list(model.wav2vec2.encoder.layers)
    heads = [list(range(len(s))) for s in imp.heads]
    ffn = [list(range(len(s))) for s in imp.ffn]
    # per frame: a head's q, k, v, out projections + its share of QK^T and AV; a neuron's two projections
    head_cost = [4 * hidden * layer.attention.head_dim + 2 * frames * layer.attention.head_dim for layer in layers]
    queue: list[tuple[float, int, str, int, int]] = []  # (importance per MAC, tie-break, kind, layer, index)
    for li in range(len(layers)):
        queue += [(float(s) / head_cost[li], len(queue), "head", li, h) for h, s in enumerate(imp.heads[li])]
        queue += [(float(s) / (2 * hidden), len(queue), "ffn", li, j) for j, s in enumerate(imp.ffn[li])]
    heapq.heapify(queue)
    current = macs_per_frame
    while current > target and queue:
        _, _, kind, li, idx = heapq.heappop(queue)
        if kind == "head" and len(heads[li]) > cfg.min_heads:
            heads[li].remove(idx)
            current -= head_cost[li]
        elif kind == "ffn" and len(ffn[li]) > cfg.min_ffn:
            ffn[li].remove(idx)
            current -= 2 * hidden
    if current > target * 1.001:
        raise FootprintError(f"prune-structured: --flops-keep {cfg.flops_keep} is out of reach with at least "
                             f"{cfg.min_heads} head(s) and {cfg.min_ffn} neurons per layer "
                             f"(lowest reachable: {current / macs_per_frame:.3f})")
    conv: dict[int, list[int]] = {}
    if cfg.conv_keep < 1:
        for i, scores in imp.conv.items():
            k = max(1, round(cfg.conv_keep * len(scores)))
            conv[i] = sorted(torch.topk(scores, k).indices.tolist())
    return PrunePlan(heads=heads, ffn=ffn, conv=conv, transformer_flops_before=info.transformer_flops_per_s,
                     transformer_flops_target=cfg.flops_keep * info.transformer_flops_per_s)
