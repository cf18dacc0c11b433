import time, statistics, torch, torch.nn.functional as F, warnings
warnings.simplefilter("ignore")
torch.set_num_threads(2)
C = 64
x = torch.randn(8, C, 1, 3215).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
xc = (x.float() - x.float().mean(1, keepdim=True)).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
g = torch.randn(C) * 0.2 + 1; b = torch.randn(C) * 0.1
ln = lambda x: F.gelu(F.layer_norm(x.permute(0, 2, 3, 1), (C,), g, b, 1e-5).permute(0, 3, 1, 2))
rms = lambda x: F.gelu(F.rms_norm(x.permute(0, 2, 3, 1), (C,), None, 1e-5).permute(0, 3, 1, 2) * g[:, None, None] + b[:, None, None])
rms2 = lambda x: F.gelu(torch.addcmul(b.to(x.dtype), F.rms_norm(x.permute(0, 2, 3, 1), (C,), None, 1e-5), g.to(x.dtype)).permute(0, 3, 1, 2))
cln = torch.compile(ln, dynamic=False)
crms = torch.compile(lambda x: F.gelu((x.float() * torch.rsqrt(x.float().square().mean(1, keepdim=True) + 1e-5)) * g[:, None, None] + b[:, None, None]).to(x.dtype), dynamic=False)
fs = {"eager ln": lambda: ln(x), "eager rms(centred)": lambda: rms(xc), "eager rms2": lambda: rms2(xc), "compiled ln": lambda: cln(x), "compiled rms": lambda: crms(xc)}
with torch.inference_mode():
    ref = F.gelu(F.layer_norm(x.float().permute(0, 2, 3, 1), (C,), g, b, 1e-5).permute(0, 3, 1, 2))
    for n, f in fs.items(): print(n, "rel %.2e" % ((f().float() - ref).norm() / ref.norm()).item())
    ts = {n: [] for n in fs}
    for r in range(30):
        for n, f in fs.items():
            t = time.perf_counter()
            for _ in range(5): f()
            ts[n].append((time.perf_counter() - t) / 5 * 1000)
    for n in fs: print(n, "%.3f ms" % statistics.median(ts[n]))
