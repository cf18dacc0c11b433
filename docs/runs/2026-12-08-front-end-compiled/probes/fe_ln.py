"""One 8-window group of the bf16 front end: eager vs compiled (static, freezing) with F.layer_norm vs one-pass
statistics (sum and sum of squares in one reduction loop); interleaved; 2 threads."""
import os, time, statistics, logging, warnings, torch
import torch.nn.functional as F
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
import torch._inductor.config as ic
ic.freezing = True
from compress.variants import load_variant
fe = load_variant("front-end-bf16").model.wav2vec2.feature_extractor
w = fe._footprint_front_end_windows
window = w.stride * (w.frames - 1) + w.field
def ln_onepass(x, n):
    xf = x.float()
    mean = xf.mean(-1, keepdim=True)
    var = (xf * xf).mean(-1, keepdim=True) - mean * mean
    return (xf - mean) * torch.rsqrt(var + n.eps) * n.weight + n.bias
class Blocks(torch.nn.Module):
    def __init__(self, fe, onepass):
        super().__init__()
        self.onepass = onepass
        self.convs = torch.nn.ModuleList()
        for block in fe.conv_layers:
            c = block.conv
            conv = torch.nn.Conv2d(c.in_channels, c.out_channels, (1, c.kernel_size[0]), (1, c.stride[0]), bias=c.bias is not None)
            conv.weight.data = c.weight.data[:, :, None, :].clone()
            if c.bias is not None: conv.bias.data = c.bias.data.clone()
            self.convs.append(conv)
        self.norms = torch.nn.ModuleList(b.layer_norm for b in fe.conv_layers)
    def forward(self, x):
        x = x[:, None, None, :].to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        for conv, n in zip(self.convs, self.norms):
            x = conv(x).permute(0, 2, 3, 1)
            x = ln_onepass(x, n) if self.onepass else F.layer_norm(x.float(), n.normalized_shape, n.weight, n.bias, n.eps)
            x = F.gelu(x).to(torch.bfloat16).permute(0, 3, 1, 2)
        return x[:, :, 0, :].float()
def make(onepass):
    m = Blocks(fe, onepass).to(torch.bfloat16).to(memory_format=torch.channels_last).eval()
    for n in m.norms: n.float()
    return torch.compile(m, dynamic=False)
G = int(os.environ.get("G", 8))
x = torch.randn(G, window) * 0.1
fns = {"eager": fe._blocks_forward, "compiled": make(False), "onepass": make(True)}
with torch.inference_mode():
    ref = fe._blocks_forward(x).float()
    for n, f in fns.items():
        y = f(x).float(); print(n, "rel %.2e" % ((y - ref).norm() / ref.norm()).item(), flush=True)
    ts = {n: [] for n in fns}
    for r in range(int(os.environ.get("REPS", 30))):
        items = list(fns.items()); items = items if r % 2 == 0 else items[::-1]
        for n, f in items:
            t = time.perf_counter()
            for _ in range(5): f(x)
            ts[n].append((time.perf_counter() - t) / 5 * 1000)
    for n in fns: print(n, "%.2f ms" % statistics.median(ts[n]), "ratio to eager x%.2f" % statistics.median([a / b for a, b in zip(ts["eager"], ts[n])]))
