"""The encoder's attention alone, compiled (torch.compile, static shapes) on (8, 4, T, 48) with a padding keep-mask:
the matmul form (attention.py) and ATen's SDPA, each in bf16 and fp32; per call, interleaved; 2 threads."""
import os, time, statistics, torch, logging, warnings
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.methods.attention import matmul_attention
T = int(os.environ.get("T", 252)); B, H, D = 8, 4, 48
torch.manual_seed(0)
q, k, v = (torch.randn(B, H, T, D) * 0.5).bfloat16(), (torch.randn(B, H, T, D) * 0.5).bfloat16(), torch.randn(B, H, T, D).bfloat16()
keep = torch.ones(B, 1, 1, T); keep[4:, ..., T - T // 5:] = 0
def mm(q, k, v, keep): return matmul_attention(None, q, k, v, keep)[0]
def chunked(q, k, v, keep):
    return torch.cat([matmul_attention(None, q[i:i + 1], k[i:i + 1], v[i:i + 1], keep[i:i + 1])[0] for i in range(B)])
def bfsum(q, k, v, keep):
    key = torch.where(keep.transpose(-1, -2) > 0, k, k[:, :, :1])
    s = torch.matmul(q * D ** -0.5, key.transpose(-1, -2))
    w = ((s - s.amax(-1, keepdim=True)).exp() * keep).to(v.dtype)
    out = torch.matmul(w, v) / w.sum(-1, keepdim=True, dtype=torch.float32)
    return out.to(v.dtype).transpose(1, 2).contiguous()
def sdpa(q, k, v, keep):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep > 0).transpose(1, 2).contiguous()
fns = {n: torch.compile(f, dynamic=False) for n, f in (("matmul", mm), ("sdpa", sdpa))}
c32 = {n: torch.compile(f, dynamic=False) for n, f in (("matmul", mm), ("sdpa", sdpa))}
fns["matmul fp32"] = lambda q, k, v, keep: c32["matmul"](q.float(), k.float(), v.float(), keep)
fns["sdpa fp32"] = lambda q, k, v, keep: c32["sdpa"](q.float(), k.float(), v.float(), keep)
with torch.inference_mode():
    ref = mm(q.float(), k.float(), v.float(), keep).float()
    for n, f in fns.items():
        o = f(q, k, v, keep).float(); print(n, "rel %.2e" % ((o[:4] - ref[:4]).norm() / ref[:4].norm()).item(), flush=True)
    ts = {n: [] for n in fns}
    for r in range(25):
        items = list(fns.items()); items = items if r % 2 == 0 else items[::-1]
        for n, f in items:
            t = time.perf_counter()
            for _ in range(5): f(q, k, v, keep)
            ts[n].append((time.perf_counter() - t) / 5 * 1000)
    for n in fns: print(f"T={T}: {n:8s} {statistics.median(ts[n]):.2f} ms per layer")
