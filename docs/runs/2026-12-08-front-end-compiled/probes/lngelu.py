import time, statistics, torch, torch.nn.functional as F, logging, warnings
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
x = torch.randn(8, 3215, 64).to(torch.bfloat16)
w = torch.randn(64); b = torch.randn(64)
def e_ln(x): return F.layer_norm(x, (64,), w, b, 1e-5)
def e_gelu(x): return F.gelu(x)
def e_both(x): return F.gelu(F.layer_norm(x, (64,), w, b, 1e-5))
def c_gelu(x): return F.gelu(x.float()).to(torch.bfloat16)
def c_ln(x): return F.layer_norm(x.float(), (64,), w, b, 1e-5).to(torch.bfloat16)
def c_both(x): return F.gelu(F.layer_norm(x.float(), (64,), w, b, 1e-5)).to(torch.bfloat16)
def c_tanh(x): return F.gelu(F.layer_norm(x.float(), (64,), w, b, 1e-5), approximate="tanh").to(torch.bfloat16)
def c_ln_relu(x): return F.relu(F.layer_norm(x.float(), (64,), w, b, 1e-5)).to(torch.bfloat16)
fns = {"eager ln": e_ln, "eager gelu": e_gelu, "eager ln+gelu": e_both,
       "comp gelu": torch.compile(c_gelu, dynamic=False), "comp ln": torch.compile(c_ln, dynamic=False),
       "comp ln+gelu": torch.compile(c_both, dynamic=False), "comp ln+gelu(tanh)": torch.compile(c_tanh, dynamic=False),
       "comp ln+relu": torch.compile(c_ln_relu, dynamic=False)}
with torch.inference_mode():
    for f in fns.values(): f(x)
    ts = {n: [] for n in fns}
    for r in range(25):
        for n, f in fns.items():
            t = time.perf_counter()
            for _ in range(5): f(x)
            ts[n].append((time.perf_counter() - t) / 5 * 1000)
    for n in fns: print(f"{n:22s} {statistics.median(ts[n]):.2f} ms  ({x.numel()/1e6:.1f} M elements)")
