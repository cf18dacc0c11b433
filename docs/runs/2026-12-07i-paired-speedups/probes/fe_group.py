"""The windowed front end over a batch of 8 x 4 s, for chunk_frames x chunk_group settings, interleaved; 2 threads."""
import time, statistics, warnings, logging, torch
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
from compress.methods.front_end import Windows
fe = load_variant("front-end-bf16").model.wav2vec2.feature_extractor
base = fe._footprint_front_end_windows
x = torch.randn(8, 64000)
settings = [(50, 8), (50, 4), (50, 2), (25, 8), (25, 4), (100, 4), (100, 2), (0, 0)]
with torch.inference_mode():
    ts = {s: [] for s in settings}
    ref = None
    for r in range(12):
        for s in settings:
            fe._footprint_front_end_windows = Windows(s[0], s[1], base.field, base.stride) if s[0] else None
            y = fe(x)
            if ref is None: ref = y
            t = time.perf_counter()
            for _ in range(3): fe(x)
            ts[s].append((time.perf_counter() - t) / 3 * 1000)
    for s in settings: print(s, "%.1f ms" % statistics.median(ts[s]), "err %.1e" % (fe(x) - ref).abs().max().item() if False else "")
