"""Kernel-level profile of a chain on a real dev-clean batch of 8 x ~5 s (Inductor kernel profiling on: its own
artefact key), grouped; 2 threads."""
import os, sys, glob, time, statistics, logging, warnings, torch, numpy as np, soundfile as sf
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
if os.environ.get("FTZ"): print("flush denormal", torch.set_flush_denormal(True))
import torch._inductor.config as ic
ic.cpp.enable_kernel_profile = True
from compress.variants import load_variant
spec = sys.argv[1]
m = load_variant(spec).model
root = os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/")
auds = [sf.read(f, dtype="float32")[0] for f in sorted(glob.glob(root + "dev-clean/*/*/*.flac"))]
def norm(a): return (a - a.mean()) / np.sqrt(a.var() + 1e-7)
pick = sorted(auds, key=lambda a: abs(len(a) / 16000 - 5.0))[:8]
L = max(len(a) for a in pick); x = torch.zeros(8, L); mask = torch.zeros(8, L, dtype=torch.long)
for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(norm(a)); mask[i, :len(a)] = 1
from torch.profiler import profile, ProfilerActivity
with torch.inference_mode():
    for _ in range(3): m(x, attention_mask=mask)
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(5): m(x, attention_mask=mask)
ev = sorted(((e.key, e.self_cpu_time_total / 5000, e.count // 5) for e in p.key_averages()), key=lambda e: -e[1])
print("total %.1f ms" % sum(t for _, t, _ in ev))
for k, t, c in ev[:40]: print(f"{t:7.2f} ms {c:5d}x  {k[:120]}")
