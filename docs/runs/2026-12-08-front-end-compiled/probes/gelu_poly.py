"""GELU with erf from Abramowitz & Stegun 7.1.28 (|error| <= 3e-7, no exp) vs exact erf: accuracy, and compiled
LayerNorm+GELU time on a front-end-sized bf16 tensor; 2 threads."""
import time, statistics, torch, torch.nn.functional as F, logging, warnings
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
A = (0.0705230784, 0.0422820123, 0.0092705272, 0.0001520143, 0.0002765672, 0.0000430638)
def erf_as(x):
    a = x.abs()
    p = 1 + a * (A[0] + a * (A[1] + a * (A[2] + a * (A[3] + a * (A[4] + a * A[5])))))
    p = p * p; p = p * p; p = p * p; p = p * p
    return torch.sign(x) * (1 - 1 / p)
def gelu_as(x): return 0.5 * x * (1 + erf_as(x * 0.7071067811865476))
xs = torch.linspace(-30, 30, 2_000_001, dtype=torch.float64)
print("erf max abs err (fp64 eval):", (erf_as(xs) - torch.erf(xs)).abs().max().item())
xf = xs.float()
print("erf max abs err (fp32 eval):", (erf_as(xf).double() - torch.erf(xs)).abs().max().item(), " torch fp32 erf:", (torch.erf(xf).double() - torch.erf(xs)).abs().max().item())
print("gelu max abs err fp32:", (gelu_as(xf).double() - F.gelu(xs)).abs().max().item(), " torch fp32 gelu:", (F.gelu(xf).double() - F.gelu(xs)).abs().max().item())
print("nan/inf check:", gelu_as(torch.tensor([float('inf'), -float('inf'), 1e30, -1e30, 0.0])))
x = torch.randn(8, 3215, 64).to(torch.bfloat16)
w = torch.randn(64); b = torch.randn(64)
def ln(x): return F.layer_norm(x.float(), (64,), w, b, 1e-5)
fns = {"eager ln+gelu": lambda x: F.gelu(F.layer_norm(x, (64,), w, b, 1e-5)),
       "comp ln+gelu exact": torch.compile(lambda x: F.gelu(ln(x)).to(torch.bfloat16), dynamic=False),
       "comp ln+gelu A&S": torch.compile(lambda x: gelu_as(ln(x)).to(torch.bfloat16), dynamic=False),
       "comp ln+relu": torch.compile(lambda x: F.relu(ln(x)).to(torch.bfloat16), dynamic=False)}
with torch.inference_mode():
    ref = fns["comp ln+gelu exact"](x).float()
    print("bf16 outputs differ in", (fns["comp ln+gelu A&S"](x).float() != ref).float().mean().item(), "of elements")
    ts = {n: [] for n in fns}
    for r in range(25):
        for n, f in fns.items():
            t = time.perf_counter()
            for _ in range(5): f(x)
            ts[n].append((time.perf_counter() - t) / 5 * 1000)
    for n in fns: print(f"{n:22s} {statistics.median(ts[n]):.2f} ms")
