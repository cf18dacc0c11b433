"""Teacher vs chains (load_variant, as a deployer builds them) on real dev-clean batches of 8 of ~S s, interleaved
repeats in one process; medians and median per-repeat ratios over the teacher; 2 threads."""
import os, glob, time, statistics, logging, warnings, torch, numpy as np, soundfile as sf
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
specs = os.environ.get("SPECS", "front-end-bf16+int8-inductor-static-bf16,front-end-compiled+int8-inductor-static-bf16").split(",")
models = {"teacher": load_variant("embedded").model}
for s in specs:
    t = time.perf_counter(); models[s] = load_variant(s).model; print(s, "built %.1f s" % (time.perf_counter() - t), flush=True)
root = os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/")
auds = [sf.read(f, dtype="float32")[0] for f in sorted(glob.glob(root + "dev-clean/*/*/*.flac"))]
def norm(a): return (a - a.mean()) / np.sqrt(a.var() + 1e-7)
def batch(S):
    pick = sorted(auds, key=lambda a: abs(len(a) / 16000 - S))[:8]
    L = max(len(a) for a in pick); x = torch.zeros(8, L); m = torch.zeros(8, L, dtype=torch.long)
    for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(norm(a)); m[i, :len(a)] = 1
    return x, m, L / 16000
with torch.inference_mode():
    for S in [float(s) for s in os.environ.get("SECS", "5,2.5,8").split(",")]:
        x, m, L = batch(S)
        for mm in models.values():
            for _ in range(2): mm(x, attention_mask=m)
        ts = {k: [] for k in models}
        for r in range(int(os.environ.get("REPS", 11))):
            items = list(models.items()); items = items if r % 2 == 0 else items[::-1]
            for k, mm in items:
                t = time.perf_counter(); mm(x, attention_mask=m); ts[k].append(time.perf_counter() - t)
        print(f"8 x {L:.2f} s: teacher {1e3 * statistics.median(ts['teacher']):.0f} ms; " + "; ".join(
            f"{k} {1e3 * statistics.median(ts[k]):.0f} ms x{statistics.median([a / b for a, b in zip(ts['teacher'], ts[k])]):.2f}"
            for k in specs), flush=True)
