"""Attention variants compiled (dynamic length), batch 8 x 4 heads x T x 48 bf16, 2 threads; median ms per call."""
import sys, time, warnings, logging, torch
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
import os
if os.environ.get('FTZ'): print('ftz', torch.set_flush_denormal(True))
import torch._inductor.config as ic; ic.cpp.enable_kernel_profile = True
from compress.methods.attention import matmul_attention
B, H, D = 8, 4, 48

def cur(q, k, v, m):
    return matmul_attention(None, q, k, v, m)[0]

def bfsum(q, k, v, mask):  # sum of the bf16 weights themselves
    key = torch.where(mask.transpose(-1, -2) > 0, k, k[:, :, :1])
    s = torch.matmul(q * D ** -0.5, key.transpose(-1, -2))
    w = ((s - s.amax(-1, keepdim=True)).exp() * mask).to(v.dtype)
    out = torch.matmul(w, v) / w.sum(-1, keepdim=True)
    return out.to(v.dtype).transpose(1, 2).contiguous()

def heads(q, k, v, m):  # one head at a time: each head's scores fit L2
    return torch.cat([matmul_attention(None, q[:, h:h+1], k[:, h:h+1], v[:, h:h+1], m)[0] for h in range(H)], 2)

def augv(q, k, v, mask):  # the sum from the second matmul: V padded to 64 columns, one of them ones
    key = torch.where(mask.transpose(-1, -2) > 0, k, k[:, :, :1])
    s = torch.matmul(q * D ** -0.5, key.transpose(-1, -2))
    w = ((s - s.amax(-1, keepdim=True)).exp() * mask).to(v.dtype)
    ones = torch.ones_like(v[..., :1])
    va = torch.cat([v, ones, torch.zeros_like(v[..., :15])], -1)
    o = torch.matmul(w, va)
    out = o[..., :D].float() / o[..., D:D+1].float()
    return out.to(v.dtype).transpose(1, 2).contiguous()

def sdpa(q, k, v, mask):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask > 0).transpose(1, 2).contiguous()

def clamp(q, k, v, mask):
    key = torch.where(mask.transpose(-1, -2) > 0, k, k[:, :, :1])
    s = torch.matmul(q * D ** -0.5, key.transpose(-1, -2))
    w = (s - s.amax(-1, keepdim=True)).clamp_min(-80.0).exp() * mask
    w = w.to(v.dtype)
    out = torch.matmul(w, v) / w.sum(-1, keepdim=True, dtype=torch.float32)
    return out.to(v.dtype).transpose(1, 2).contiguous()

fns = {"clamp": clamp, "cur": cur, "bfsum": bfsum, "heads": heads, "augv": augv, "sdpa": sdpa}
names = sys.argv[1].split(",") if len(sys.argv) > 1 else list(fns)
T = int(sys.argv[2]) if len(sys.argv) > 2 else 250
g = torch.Generator().manual_seed(0)
def inputs(t):
    import os
    if os.environ.get("LAYOUT"):
        q, k, v = (torch.randn(B, t, H, D, generator=g).to(torch.bfloat16).transpose(1, 2) * 2 for _ in range(3))
        q, k, v = (torch.randn(B, t, H * D, generator=g).to(torch.bfloat16).view(B, t, H, D).transpose(1, 2) for _ in range(3))
    else:
        q, k, v = (torch.randn(B, H, t, D, generator=g).to(torch.bfloat16) * float(os.environ.get("SCALE", 2)) for _ in range(3))
    m = torch.ones(B, 1, 1, t); m[4:, ..., t - t // 5:] = 0
    return q, k, v, m
comp = {n: torch.compile(fns[n], dynamic=True) for n in names}
with torch.inference_mode():
    for t in (T - 17, T):  # compile and warm with a second length
        x = inputs(t)
        ref = cur(*[a.float() for a in x[:3]], x[3]).float()
        for n in names:
            y = comp[n](*x).float()
            keep = (x[3][:, 0, 0] > 0)[:, :, None, None].expand_as(y)
            print(t, n, "rel err %.2e" % ((y - ref)[keep].norm() / ref[keep].norm()).item())
    ts = {n: [] for n in names}
    for r in range(15):
        for n in names:
            s = time.perf_counter()
            for _ in range(12): comp[n](*x)  # 12 layers
            ts[n].append((time.perf_counter() - s) * 1000)
    for n in names: print(n, "12 calls median %.2f ms" % sorted(ts[n])[7])
if "--prof" in sys.argv:
    import torch._inductor.config as ic
    from torch.profiler import profile, ProfilerActivity
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as p:
        for n in names:
            for _ in range(12): comp[n](*x)
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=70))
