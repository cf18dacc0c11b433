"""Teacher vs chain per forward, batch 8 x 5 s (padded rows), 2 threads, interleaved; MALLOPT=1 sets glibc's
mmap threshold (32 MiB) and trim threshold (huge) through mallopt before torch allocates anything."""
import os, sys, ctypes, time, resource, logging, warnings
if os.environ.get("MALLOPT"):
    libc = ctypes.CDLL("libc.so.6")
    print("mallopt", libc.mallopt(-1, 1 << 40), libc.mallopt(-3, 32 << 20))  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
import torch, numpy as np
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
specs = sys.argv[1].split(",")
models = {s: load_variant(s).model for s in specs}
rng = np.random.default_rng(0)
x = torch.from_numpy(rng.standard_normal((8, 80000)).astype(np.float32)); mask = torch.ones_like(x, dtype=torch.long); mask[4:, -4800:] = 0
ts = {s: [] for s in specs}; flt = {s: [] for s in specs}
with torch.inference_mode():
    for s in specs:
        for _ in range(3): models[s](x, attention_mask=mask)
    for r in range(int(os.environ.get("REPS", 15))):
        for s in specs:
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter(); models[s](x, attention_mask=mask); ts[s].append(time.perf_counter() - t)
            flt[s].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
for s in specs:
    print(f"{s}: median {1000*np.median(ts[s]):.1f} ms, minor faults/forward {np.median(flt[s]):.0f}")
if len(specs) > 1:
    print("ratio teacher/chain per repeat median", np.median(np.array(ts[specs[0]]) / np.array(ts[specs[1]])))
