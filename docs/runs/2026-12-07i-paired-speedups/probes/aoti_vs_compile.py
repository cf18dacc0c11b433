"""One process: the teacher, CHAIN loaded from its AOTInductor artefact (load_variant) and CHAIN compiled in process
(artefact off: torch.compile, same graph); real dev-clean batch 8 x ~SECS s; interleaved repeats; profile of the
softmax kernel in both."""
import os, glob, time, statistics, logging, warnings, torch, numpy as np, soundfile as sf
warnings.simplefilter("ignore"); logging.basicConfig(level=logging.WARNING)
torch.set_num_threads(2)
import torch._inductor.config as ic; ic.cpp.enable_kernel_profile = True
from compress.variants import load_variant
from compress.methods.registry import parse_recipe, apply_stages
chain = os.environ.get("CHAIN", "int8-inductor-bf16")
models = {"teacher": load_variant("embedded").model, "aoti": load_variant("front-end-bf16+" + chain).model}
m = load_variant("front-end-bf16").model
t = time.perf_counter()
models["compile"] = apply_stages(m, parse_recipe(chain, {chain: {"artefact": False}}), do_normalize=True)
print("compile build %.1f s" % (time.perf_counter() - t), flush=True)
files = sorted(glob.glob(os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/dev-clean/*/*/*.flac")))
auds = [sf.read(f, dtype="float32")[0] for f in files]
S = float(os.environ.get("SECS", 5))
pick = sorted(auds, key=lambda a: abs(len(a) / 16000 - S))[:8]
L = max(len(a) for a in pick)
x = torch.zeros(8, L); mask = torch.zeros(8, L, dtype=torch.long)
for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(a); mask[i, :len(a)] = 1
with torch.inference_mode():
    ref = models["teacher"](x, attention_mask=mask).logits
    for k, mm in models.items():
        o = mm(x, attention_mask=mask).logits.float()
        print(k, "argmax agreement %.4f" % (o.argmax(-1) == ref.argmax(-1)).float().mean())
    ts = {k: [] for k in models}
    for r in range(int(os.environ.get("REPS", 21))):
        for k, mm in (models.items() if r % 2 == 0 else reversed(list(models.items()))):
            t = time.perf_counter(); mm(x, attention_mask=mask); ts[k].append(time.perf_counter() - t)
med = {k: statistics.median(v) * 1e3 for k, v in ts.items()}
print(f"batch 8 x {L/16000:.2f} s:", {k: "%.1f ms x%.2f" % (v, med["teacher"] / v) for k, v in med.items()})
print("compile / aoti per repeat median %.3f" % statistics.median(np.array(ts["compile"]) / np.array(ts["aoti"])))
from torch.profiler import profile, ProfilerActivity
for k in ("aoti", "compile"):
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(5): models[k](x, attention_mask=mask)
    ev = sorted(((e.self_cpu_time_total / 5000, e.count // 5, e.key) for e in p.key_averages()), reverse=True)
    print(k, "total %.1f ms;" % sum(t for t, _, _ in ev), "; ".join("%s x%d %.1f" % (n[:60], c, t) for t, c, n in ev[:8]))
