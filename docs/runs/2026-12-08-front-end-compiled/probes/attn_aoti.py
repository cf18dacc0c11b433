"""The matmul attention on the teacher's real q, k, v (captured per layer, dev-clean batch of 8 x ~5 s, normalized
audio): AOTInductor (dynamic batch and length) vs torch.compile (dynamic), per layer, and a kernel profile of each;
PROJ_LAYOUT=1 gives q, k, v the (batch, frames, heads, size) memory of the projections' output; 2 threads."""
import os, glob, time, statistics, torch, logging, warnings, numpy as np, soundfile as sf
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from transformers import AttentionInterface, AttentionMaskInterface
from compress.methods.attention import matmul_attention, key_padding_keep
from compress.variants import load_variant
cap = []
def capture(module, q, k, v, mask, **kw):
    cap.append((q.detach().clone(), k.detach().clone(), v.detach().clone(), mask.clone()))
    return matmul_attention(module, q, k, v, mask, **kw)
AttentionInterface.register("cap", capture); AttentionMaskInterface.register("cap", key_padding_keep)
m = load_variant("embedded").model
m.config._attn_implementation = "cap"
root = os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/")
auds = [sf.read(f, dtype="float32")[0] for f in sorted(glob.glob(root + "dev-clean/*/*/*.flac"))]
def norm(a): return (a - a.mean()) / np.sqrt(a.var() + 1e-7)
pick = sorted(auds, key=lambda a: abs(len(a) / 16000 - 5.0))[:8]
L = max(len(a) for a in pick); x = torch.zeros(8, L); mask = torch.zeros(8, L, dtype=torch.long)
for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(norm(a)); mask[i, :len(a)] = 1
with torch.inference_mode():
    m(x, attention_mask=mask)
import torch._inductor.config as ic
ic.cpp.enable_kernel_profile = True
real = [(q.bfloat16(), k.bfloat16(), v.bfloat16(), keep.bfloat16()) for q, k, v, keep in cap]
import os
if os.environ.get("PROJ_LAYOUT"):
    real = [tuple(t.transpose(1, 2).contiguous().transpose(1, 2) if t.dim() == 4 and t.shape[1] == 4 else t for t in a) for a in real]
    print("q strides", real[0][0].stride())
class Attn(torch.nn.Module):
    def forward(self, q, k, v, keep): return matmul_attention(None, q, k, v, keep)[0]
b, t = torch.export.Dim("b", min=2, max=64), torch.export.Dim("t", min=2, max=5000)
ep = torch.export.export(Attn(), real[0], dynamic_shapes=({0: b, 2: t}, {0: b, 2: t}, {0: b, 2: t}, {0: b, 3: t}), strict=False)
import tempfile
pkg = os.path.join(tempfile.mkdtemp(), "a.pt2")
torch._inductor.aoti_compile_and_package(ep, package_path=pkg)
run = torch._inductor.aoti_load_package(pkg)
tc = torch.compile(Attn(), dynamic=True)
fns = {"aoti": run, "compile": tc}
from torch.profiler import profile, ProfilerActivity
with torch.inference_mode():
    for f in fns.values():
        for a in real: f(*a)
    ts = {n: [] for n in fns}
    for r in range(15):
        for n, f in (list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]):
            t0 = time.perf_counter()
            for a in real: f(*a)
            ts[n].append((time.perf_counter() - t0) * 1000 / 12)
    for n in fns: print(f"{n}: {statistics.median(ts[n]):.2f} ms per layer", flush=True)
    for n, f in fns.items():
        with profile(activities=[ProfilerActivity.CPU]) as p:
            for _ in range(3):
                for a in real: f(*a)
        ev = sorted(((e.key, e.self_cpu_time_total / 3000 / 12) for e in p.key_averages()), key=lambda e: -e[1])
        print(n, "; ".join(f"{k[:60]} {t:.3f}" for k, t in ev[:4]))
