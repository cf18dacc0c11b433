"""One convolution of the large front end (512 -> 512 channels, kernel 3, stride 2, 25 600 input frames), in the
layouts and dtypes torch offers on CPU: why ``front-end-bf16`` uses channels-last conv2d.

    python docs/runs/2026-11-30d-issue16-cpu/conv_layout.py
"""
import time

import torch

torch.set_num_threads(2)
x = torch.randn(1, 512, 25600)
conv = torch.nn.Conv1d(512, 512, 3, stride=2, bias=False).eval()


def median_s(f, n: int = 5) -> float:
    f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2]


with torch.inference_mode():
    print(f"fp32 Conv1d                  {median_s(lambda: conv(x)):.4f} s")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        print(f"Conv1d under bf16 autocast   {median_s(lambda: conv(x)):.4f} s")
    cb, xb = conv.to(torch.bfloat16), x.to(torch.bfloat16)
    print(f"bf16 Conv1d                  {median_s(lambda: cb(xb)):.4f} s")
    c2 = torch.nn.Conv2d(512, 512, (1, 3), stride=(1, 2), bias=False).eval().to(torch.bfloat16)
    c2 = c2.to(memory_format=torch.channels_last)
    x2 = xb.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    print(f"bf16 Conv2d (1 x 3), NHWC    {median_s(lambda: c2(x2)):.4f} s")
    f2 = torch.nn.Conv2d(512, 512, (1, 3), stride=(1, 2), bias=False).eval().to(memory_format=torch.channels_last)
    xf = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    print(f"fp32 Conv2d (1 x 3), NHWC    {median_s(lambda: f2(xf)):.4f} s")
