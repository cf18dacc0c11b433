"""One process, fresh Inductor cache: the teacher; CHAIN from an AOTInductor artefact built as the suite builds it;
from one built with the wrapper at -O3 and no frame pointers; compiled in process (torch.compile).  Real dev-clean
batch 8 x ~SECS s, interleaved repeats."""
import os, glob, time, statistics, logging, warnings, tempfile, torch, numpy as np, soundfile as sf
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="ind-")
warnings.simplefilter("ignore"); logging.basicConfig(level=logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
from compress.methods import aoti
from compress.methods.registry import parse_recipe, apply_stages
chain = os.environ.get("CHAIN", "int8-inductor-static-bf16")
models = {"teacher": load_variant("embedded").model}
t = time.perf_counter(); models["aoti"] = load_variant("front-end-bf16+" + chain).model; print("aoti build %.1f s" % (time.perf_counter() - t), flush=True)
real_build = aoti.build
def build_o3(key, parts, exported, configs, write_extra):
    return real_build(key, parts, exported, {**configs, "aot_inductor.compile_wrapper_opt_level": "O3",
                                             "aot_inductor.enable_frame_pointer": False}, write_extra)
aoti.build = build_o3; aoti.FORMAT = 99  # another key: built anew
t = time.perf_counter(); models["aoti-O3"] = load_variant("front-end-bf16+" + chain).model; print("aoti-O3 build %.1f s" % (time.perf_counter() - t), flush=True)
aoti.build = real_build
m = load_variant("front-end-bf16").model
t = time.perf_counter(); models["compile"] = apply_stages(m, parse_recipe(chain, {chain: {"artefact": False}}), do_normalize=True); print("compile build %.1f s" % (time.perf_counter() - t), flush=True)
files = sorted(glob.glob(os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/dev-clean/*/*/*.flac")))
auds = [sf.read(f, dtype="float32")[0] for f in files]
S = float(os.environ.get("SECS", 5))
pick = sorted(auds, key=lambda a: abs(len(a) / 16000 - S))[:8]
L = max(len(a) for a in pick)
x = torch.zeros(8, L); mask = torch.zeros(8, L, dtype=torch.long)
for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(a); mask[i, :len(a)] = 1
with torch.inference_mode():
    for mm in models.values():
        for _ in range(2): mm(x, attention_mask=mask)
    ts = {k: [] for k in models}
    for r in range(int(os.environ.get("REPS", 25))):
        for k, mm in (models.items() if r % 2 == 0 else reversed(list(models.items()))):
            t = time.perf_counter(); mm(x, attention_mask=mask); ts[k].append(time.perf_counter() - t)
med = {k: statistics.median(v) * 1e3 for k, v in ts.items()}
print(f"batch 8 x {L/16000:.2f} s:", {k: "%.1f ms x%.2f" % (v, med["teacher"] / v) for k, v in med.items()})
for k in ("aoti-O3", "compile"):
    print(f"{k} / aoti per repeat median %.3f" % statistics.median(np.array(ts[k]) / np.array(ts["aoti"])))
