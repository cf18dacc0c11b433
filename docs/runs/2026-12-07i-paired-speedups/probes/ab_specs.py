"""In one process: variants by spec (load_variant), real dev-clean batch of 8 x ~SECS s, interleaved; median ms,
ratios vs the teacher and B/A per repeat."""
import sys, os, glob, time, statistics, logging, warnings, torch, numpy as np, soundfile as sf
warnings.simplefilter("ignore"); logging.basicConfig(level=logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
specs = sys.argv[1].split(",")
models = {}
for s in ["embedded"] + specs:
    t = time.perf_counter(); models[s] = load_variant(s).model; print(s, "load %.1f s" % (time.perf_counter() - t), flush=True)
files = sorted(glob.glob(os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/dev-clean/*/*/*.flac")))
auds = [sf.read(f, dtype="float32")[0] for f in files[:400]]
S = float(os.environ.get("SECS", 4))
pick = sorted([a for a in auds if abs(len(a) / 16000 - S) < 1.0], key=len)[:8]
L = max(len(a) for a in pick)
x = torch.zeros(8, L); mask = torch.zeros(8, L, dtype=torch.long)
for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(a); mask[i, :len(a)] = 1
print("batch s", [round(len(a) / 16000, 2) for a in pick])
with torch.inference_mode():
    ref = models["embedded"](x, attention_mask=mask).logits
    for k, m in models.items():
        o = m(x, attention_mask=mask).logits.float()
        print(k, "argmax agreement %.4f rel %.4f" % ((o.argmax(-1) == ref.argmax(-1)).float().mean(), ((o - ref).norm() / ref.norm())))
    ts = {k: [] for k in models}
    for r in range(int(os.environ.get("REPS", 21))):
        for k, m in (models.items() if r % 2 == 0 else reversed(list(models.items()))):
            t = time.perf_counter(); m(x, attention_mask=mask); ts[k].append(time.perf_counter() - t)
med = {k: statistics.median(v) * 1e3 for k, v in ts.items()}
print({k: "%.1f ms x%.2f" % (v, med["embedded"] / v) for k, v in med.items()})
for n in specs[1:]:
    print(f"{n} / {specs[0]} per repeat median %.3f" % statistics.median(np.array(ts[n]) / np.array(ts[specs[0]])))
if os.environ.get("PROF"):
    from torch.profiler import profile, ProfilerActivity
    for rep in range(2):
        for k in specs:
            with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as p:
                for _ in range(5): models[k](x, attention_mask=mask)
            ev = sorted(((e.self_cpu_time_total / 5000, e.key) for e in p.key_averages()), reverse=True)
            print(k, "total %.1f ms:" % sum(t for t, _ in ev), ", ".join("%s %.1f" % (n[:40], t) for t, n in ev[:9]))
