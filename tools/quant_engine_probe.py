"""Interleaved probe of torch int8-dynamic quantized engines (x86, fbgemm, onednn) vs fp32 on the embedded teacher:
8 s of audio, batch 1, 2 threads; prints max logit difference and median speed-up.  Not run in CI."""
import time
import warnings

import numpy as np
import torch

from compress.methods.quantize import Int8DynamicConfig, apply_int8_dynamic
from compress.variants import load_variant

torch.set_num_threads(2)
warnings.simplefilter("ignore")
base = load_variant("embedded").model
x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 16000 * 8)).astype(np.float32))
m = torch.ones_like(x, dtype=torch.long)
models = {"fp32": base}
for eng in ("x86", "fbgemm", "onednn"):
    fresh = type(base)(base.config)
    fresh.load_state_dict(base.state_dict())
    models[eng] = apply_int8_dynamic(fresh.eval(), Int8DynamicConfig(engine=eng))
with torch.inference_mode():
    ref = base(x, attention_mask=m).logits
    for k, mm in models.items():
        print(k, "max logit diff", (mm(x, attention_mask=m).logits - ref).abs().max().item())
    t: dict[str, list[float]] = {k: [] for k in models}
    for r in range(5):
        for k, mm in (list(models.items()) if r % 2 else list(models.items())[::-1]):
            t0 = time.perf_counter()
            mm(x, attention_mask=m)
            t[k].append(time.perf_counter() - t0)
for k in t:
    print(k, "median s %.4f" % np.median(t[k]), "speed-up x%.2f" % (np.median(t["fp32"]) / np.median(t[k])))
