"""AOTInductor on the windowed front end's blocks: dynamic window count (1..8), bf16 channels-last convs, freezing.
Build time, load time, error vs eager, and interleaved time per group size vs eager."""
import os, time, statistics, logging, warnings, torch, tempfile
import torch.nn.functional as F
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
fe = load_variant("front-end-bf16").model.wav2vec2.feature_extractor
w = fe._footprint_front_end_windows
window = w.stride * (w.frames - 1) + w.field
class Blocks(torch.nn.Module):
    def __init__(self, fe):
        super().__init__()
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
            x = conv(x)
            x = F.gelu(F.layer_norm(x.permute(0, 2, 3, 1).float(), n.normalized_shape, n.weight, n.bias, n.eps)).to(torch.bfloat16).permute(0, 3, 1, 2)
        return x[:, :, 0, :].float()
mod = Blocks(fe).to(torch.bfloat16).to(memory_format=torch.channels_last).eval()
for n in mod.norms: n.float()
DMIN = int(os.environ.get("DMIN", 1))
with torch.no_grad():
    t = time.perf_counter()
    ep = torch.export.export(mod, (torch.randn(int(os.environ.get("STATIC", 3)), window),), dynamic_shapes=None if os.environ.get("STATIC") else ({0: torch.export.Dim("n", min=DMIN, max=8)},), strict=False)
    pkg = os.path.join(tempfile.mkdtemp(), "fe.pt2")
    torch._inductor.aoti_compile_and_package(ep, package_path=pkg, inductor_configs={"freezing": bool(int(os.environ.get("FREEZE", 1)))})
    print("build %.1f s" % (time.perf_counter() - t), flush=True)
t = time.perf_counter(); run = torch._inductor.aoti_load_package(pkg); print("load %.2f s" % (time.perf_counter() - t))
with torch.inference_mode():
    for g in (8, 4, 2, 1):
        if g < DMIN: continue
        x = torch.randn(g, window) * 0.3
        ref = fe._blocks_forward(x).float(); y = run(x)
        print(g, "rel %.2e" % ((y - ref).norm() / ref.norm()).item())
    x = torch.randn(8, window) * 0.3
    fns = {"eager": fe._blocks_forward, "aoti": run}
    ts = {n: [] for n in fns}
    for r in range(30):
        items = list(fns.items()); items = items if r % 2 == 0 else items[::-1]
        for n, f in items:
            t = time.perf_counter()
            for _ in range(5): f(x)
            ts[n].append((time.perf_counter() - t) / 5 * 1000)
    for n in fns: print(n, "%.2f ms" % statistics.median(ts[n]), "x%.2f vs eager" % statistics.median([a / b for a, b in zip(ts["eager"], ts[n])]))
