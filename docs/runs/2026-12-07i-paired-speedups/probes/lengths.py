"""Teacher vs a chain (load_variant, as a deployer builds it) on real dev-clean batches of 8 utterances of about
S seconds, S in SECS; interleaved repeats in one process; then a profile at PROF_S seconds grouped by kind."""
import os, sys, glob, time, statistics, logging, warnings, torch, numpy as np, soundfile as sf
warnings.simplefilter("ignore"); logging.basicConfig(level=logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
spec = sys.argv[1]
models = {"teacher": load_variant("embedded").model, "chain": load_variant(spec).model}
files = sorted(glob.glob(os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/dev-clean/*/*/*.flac")))
auds = [sf.read(f, dtype="float32")[0] for f in files]
def batch(S):
    pick = sorted(auds, key=lambda a: abs(len(a) / 16000 - S))[:8]
    L = max(len(a) for a in pick)
    x = torch.zeros(8, L); mask = torch.zeros(8, L, dtype=torch.long)
    for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(a); mask[i, :len(a)] = 1
    return x, mask, L / 16000
out = []
with torch.inference_mode():
    for S in [float(s) for s in os.environ.get("SECS", "2,4,6,9").split(",")]:
        x, mask, L = batch(S)
        for m in models.values():
            for _ in range(2): m(x, attention_mask=mask)
        ts = {k: [] for k in models}
        for r in range(int(os.environ.get("REPS", 11))):
            for k, m in (models.items() if r % 2 == 0 else reversed(list(models.items()))):
                t = time.perf_counter(); m(x, attention_mask=mask); ts[k].append(time.perf_counter() - t)
        per = [a / b for a, b in zip(ts["teacher"], ts["chain"])]
        print(f"batch 8 x {L:.2f} s: teacher {1e3 * statistics.median(ts['teacher']):.0f} ms, chain "
              f"{1e3 * statistics.median(ts['chain']):.0f} ms, paired x{statistics.median(per):.2f}", flush=True)
    if os.environ.get("PROF_S"):
        from torch.profiler import profile, ProfilerActivity
        x, mask, L = batch(float(os.environ["PROF_S"]))
        kinds = {"front-end conv": ("aten::mkldnn_convolution",), "front-end LN": ("aten::native_layer_norm",),
                 "front-end GELU": ("aten::gelu",), "int8 GEMM": ("qlinear",), "attention matmuls": ("bmm",),
                 "softmax exponentials": ("amax_exp",)}
        for k in ("teacher", "chain"):
            with profile(activities=[ProfilerActivity.CPU]) as p:
                for _ in range(5): models[k](x, attention_mask=mask)
            ev = [(e.key, e.self_cpu_time_total / 5000) for e in p.key_averages()]
            tot = sum(t for _, t in ev)
            groups = {g: sum(t for n, t in ev if any(s in n for s in pats)) for g, pats in kinds.items()}
            groups["other"] = tot - sum(groups.values())
            print(f"profile {k}, batch 8 x {L:.2f} s: total {tot:.1f} ms;", ", ".join(f"{g} {t:.1f}" for g, t in groups.items()))
            if k == "teacher":
                print("  teacher top:", ", ".join(f"{n} {t:.1f}" for n, t in sorted(ev, key=lambda e: -e[1])[:6]))
