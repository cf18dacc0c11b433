"""In one process: the teacher and int8 chains built (artefact off) with attention A (the module's) and B (a variant
registered before building); real dev-clean batches of 8 of ~T s; interleaved repeats, median ms and ratios."""
import sys, os, glob, time, statistics, logging, warnings, torch, numpy as np, soundfile as sf
warnings.simplefilter("ignore"); logging.basicConfig(level=logging.WARNING)
torch.set_num_threads(2)

if os.environ.get("FTZ"): print("ftz", torch.set_flush_denormal(True))
from compress.variants import load_variant
from compress.methods.registry import parse_recipe, apply_stages
from compress.methods import attention
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attn_variants as V  # the B-side patches: V.apply(name) before building, V.undo() after
chain = os.environ.get("CHAIN", "int8-inductor-bf16")
names = sys.argv[1].split(",")  # e.g. base,bfsum
def build(name):
    V.apply(name)
    try:
        m = load_variant("front-end-compiled").model
        t = time.perf_counter()
        opts = {"artefact": False, **({"attention": "sdpa"} if name == "sdpa" else {})}
        m = apply_stages(m, parse_recipe(chain, {chain: opts}), do_normalize=True)
        print(name, "build %.1f s" % (time.perf_counter() - t), flush=True)
    finally:
        V.undo()
    return m
models = {"teacher": load_variant("embedded").model}
for n in names: models[n] = build(n)
files = sorted(glob.glob(os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/dev-clean/*/*/*.flac")))
auds = [sf.read(f, dtype="float32")[0] for f in files[:400]]
S = float(os.environ.get("SECS", 5))
pick = sorted([a for a in auds if abs(len(a) / 16000 - S) < 1.0], key=len)[:8]
L = max(len(a) for a in pick)
x = torch.zeros(8, L); mask = torch.zeros(8, L, dtype=torch.long)
for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(a); mask[i, :len(a)] = 1
print("batch", [round(len(a) / 16000, 2) for a in pick])
with torch.inference_mode():
    ref = models["teacher"](x, attention_mask=mask).logits
    for k, m in models.items():
        o = m(x, attention_mask=mask).logits.float()
        print(k, "argmax agreement %.4f rel %.4f" % ((o.argmax(-1) == ref.argmax(-1)).float().mean(), ((o - ref).norm() / ref.norm())))
    ts = {k: [] for k in models}
    for r in range(int(os.environ.get("REPS", 21))):
        for k, m in (models.items() if r % 2 == 0 else reversed(list(models.items()))):
            t = time.perf_counter(); m(x, attention_mask=mask); ts[k].append(time.perf_counter() - t)
med = {k: statistics.median(v) * 1e3 for k, v in ts.items()}
print({k: "%.1f ms x%.2f" % (v, med["teacher"] / v) for k, v in med.items()})
for n in names[1:]:
    print(f"{n}/{names[0]} per repeat median %.3f" % statistics.median(np.array(ts[n]) / np.array(ts[names[0]])))
if os.environ.get("PROF"):
    import torch._inductor.config as ic
    from torch.profiler import profile, ProfilerActivity
    for k in ["teacher"] + names:
        with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as p:
            for _ in range(5): models[k](x, attention_mask=mask)
        print("==", k)
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=int(os.environ["PROF"]), max_name_column_width=80))
