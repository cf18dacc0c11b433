import time, statistics, torch, torch.nn.functional as F
torch.set_num_threads(2)
torch.backends.quantized.engine = "x86"
shapes = [(64, 96, 3, 3215), (96, 96, 3, 1607), (96, 128, 3, 803), (128, 128, 3, 401)]
for cin, cout, k, t in shapes:
    x = torch.randn(8, cin, 1, t)
    w = torch.randn(cout, cin, 1, k) * 0.1; b = torch.randn(cout)
    xb = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last); wb = w.to(torch.bfloat16).contiguous(memory_format=torch.channels_last); bb = b.to(torch.bfloat16)
    qc = torch.ao.nn.quantized.Conv2d(cin, cout, (1, k), (1, 2))
    qw = torch.quantize_per_channel(w, w.abs().amax((1, 2, 3)) / 127, torch.zeros(cout, dtype=torch.long), 0, torch.qint8)
    qc.set_weight_bias(qw, b); qc.scale = 0.05; qc.zero_point = 64
    xq = torch.quantize_per_tensor(x, 0.03, 64, torch.quint8).contiguous(memory_format=torch.channels_last)
    fs = {"bf16": lambda: F.conv2d(xb, wb, bb, (1, 2)), "int8 (q in, q out)": lambda: qc(xq),
          "quantize bf16->u8": lambda: torch.quantize_per_tensor(xb.float(), 0.03, 64, torch.quint8)}
    with torch.inference_mode():
        ts = {n: [] for n in fs}
        for r in range(20):
            for n, f in fs.items():
                s = time.perf_counter()
                for _ in range(5): f()
                ts[n].append((time.perf_counter() - s) / 5 * 1000)
    print((cin, cout, t), {n: "%.3f" % statistics.median(v) for n, v in ts.items()})
