import torch
from compress.methods import attention
_orig = attention.matmul_attention

def bfsum(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    if attention_mask is not None:
        key = torch.where(attention_mask.transpose(-1, -2) > 0, key, key[:, :, :1])
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    weights = (scores - scores.amax(-1, keepdim=True)).exp()
    if attention_mask is not None:
        weights = weights * attention_mask
    weights = weights.to(value.dtype)
    out = torch.matmul(weights, value) / weights.sum(-1, keepdim=True)
    return out.to(value.dtype).transpose(1, 2).contiguous(), None

PATCH = {"bfsum": bfsum}
def apply(name):
    from transformers import AttentionInterface
    if name in PATCH:
        AttentionInterface.register(attention.NAME, PATCH[name])
def undo():
    from transformers import AttentionInterface
    AttentionInterface.register(attention.NAME, _orig)

def clamp(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    if attention_mask is not None:
        key = torch.where(attention_mask.transpose(-1, -2) > 0, key, key[:, :, :1])
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    weights = (scores - scores.amax(-1, keepdim=True)).clamp_min(-80.0).exp()
    if attention_mask is not None:
        weights = weights * attention_mask
    weights = weights.to(value.dtype)
    out = torch.matmul(weights, value) / weights.sum(-1, keepdim=True, dtype=torch.float32)
    return out.to(value.dtype).transpose(1, 2).contiguous(), None
PATCH["clamp"] = clamp
