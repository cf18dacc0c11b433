"""Per-layer time of the windowed bf16 front end (eager), real batch 8 x ~5 s; conv1 as conv vs unfold+matmul."""
import os, glob, time, statistics, logging, warnings, torch, numpy as np, soundfile as sf
import torch.nn.functional as F
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
fe = load_variant("front-end-bf16").model.wav2vec2.feature_extractor
files = sorted(glob.glob(os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/dev-clean/*/*/*.flac")))
auds = [sf.read(f, dtype="float32")[0] for f in files]
pick = sorted(auds, key=lambda a: abs(len(a) / 16000 - 5.0))[:8]
L = max(len(a) for a in pick); x = torch.zeros(8, L)
for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(a)
from torch.profiler import profile, ProfilerActivity
with torch.inference_mode():
    for _ in range(3): fe(x)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        for _ in range(5): fe(x)
    print(p.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=30, max_shapes_column_width=90))
    # conv1 alone: conv2d bf16 channels-last vs unfold + matmul
    from compress.methods.front_end import _channels_last
    c1 = fe.conv_layers[0].conv
    w = fe._conv_weights(c1)[0]
    win = 8; W = 16080
    a = torch.randn(win, W)
    xa = _channels_last(a[:, None, None, :], torch.bfloat16)
    wm = c1.weight.detach()[:, 0, :].t().contiguous()  # (10, 64)
    wmb = wm.to(torch.bfloat16)
    def conv(): return F.conv2d(xa, w, None, (1, 5))
    def mm32(): return a.unfold(1, 10, 5) @ wm
    def mmbf(): return (a.to(torch.bfloat16).unfold(1, 10, 5) @ wmb)
    ref = conv()[:, :, 0, :].transpose(1, 2).float()
    for n, f in (("mm32", mm32), ("mmbf", mmbf)):
        print(n, "rel err", ((f().float() - ref).norm() / ref.norm()).item())
    ts = {"conv": [], "mm32": [], "mmbf": []}
    for r in range(30):
        for n, f in (("conv", conv), ("mm32", mm32), ("mmbf", mmbf)):
            t = time.perf_counter()
            for _ in range(5): f()
            ts[n].append((time.perf_counter() - t) / 5 * 1e3)
    print({n: round(statistics.median(v), 3) for n, v in ts.items()}, "ms per 8-window call")
