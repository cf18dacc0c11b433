import torch
from compress.methods import attention
_orig = attention.matmul_attention

def noexp(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention without the softmax's exponential (scores used as weights): what the two matmuls cost alone."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    out = torch.matmul(scores * 0.01, value)
    return out.transpose(1, 2).contiguous(), None

def noattn(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """No attention at all (the values passed through): what the whole attention costs."""
    return (value * 0.5).transpose(1, 2).contiguous(), None

def bfsum(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The softmax's sum over the bf16 weights the second matmul reads (no fp32 copy of the weights)."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    if attention_mask is not None:
        key = torch.where(attention_mask.transpose(-1, -2) > 0, key, key[:, :, :1])
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    weights = (scores - scores.amax(-1, keepdim=True)).exp()
    if attention_mask is not None:
        weights = weights * attention_mask
    weights = weights.to(value.dtype)
    out = torch.matmul(weights, value) / weights.sum(-1, keepdim=True, dtype=torch.float32)
    return out.to(value.dtype).transpose(1, 2).contiguous(), None

def clamp(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The scores minus the row maximum clamped at -80 before the exponential (no denormal results)."""
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

def bf16qkv(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The matmul attention with the queries, keys and values cast to bf16 explicitly (exported so)."""
    dtype = value.dtype
    query, key, value = (t.to(torch.bfloat16) for t in (query, key, value))
    out, _ = _orig(module, query, key, value, attention_mask, scaling, dropout, **kwargs)
    return out.to(dtype), None

PATCH = {"noexp": noexp, "noattn": noattn, "bfsum": bfsum, "clamp": clamp, "bf16qkv": bf16qkv}
import torch._inductor.config as ic
_saved = {}
def apply(name):
    # attention.register() (called by every export) registers the module's matmul_attention: patch that name
    if name in PATCH:
        attention.matmul_attention = PATCH[name]
    if name.startswith("autotune"):
        _saved.update(max_autotune=ic.max_autotune, max_autotune_gemm_backends=ic.max_autotune_gemm_backends)
        ic.max_autotune = True
        ic.max_autotune_gemm_backends = "CPP,ATEN"
def undo():
    attention.matmul_attention = _orig
    for k, v in _saved.items(): setattr(ic, k, v)
