"""PT2E int8 front-end convs 2..7 (static, calibrated on 16 train-clean utterances' windows; conv1 fp32) through
AOTInductor with a dynamic window count and freezing: correct? how fast per 8-window group vs the bf16 artefact?"""
import os, glob, time, tempfile, statistics, logging, warnings, torch, numpy as np, soundfile as sf
import torch.nn.functional as F
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
m32 = load_variant("embedded").model
fe32 = m32.wav2vec2.feature_extractor
comp = load_variant("front-end-compiled").model.wav2vec2.feature_extractor
w = comp._footprint_front_end_windows
window = w.stride * (w.frames - 1) + w.field
root = os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/")
def norm(a): return (a - a.mean()) / np.sqrt(a.var() + 1e-7)
def windows(files):
    out = []
    for f in files:
        a = torch.from_numpy(norm(sf.read(f, dtype="float32")[0]))
        for s in range(0, len(a) - window, w.stride * w.frames): out.append(a[s:s + window])
    return torch.stack(out)
cal = windows(sorted(glob.glob(root + "train-clean/*/*/*.flac"))[::400][:16])
ev = windows(sorted(glob.glob(root + "dev-clean/*/*/*.flac"))[:30])
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
        x = x[:, None, None, :].contiguous(memory_format=torch.channels_last)
        for conv, n in zip(self.convs, self.norms):
            x = conv(x)
            x = F.gelu(F.layer_norm(x.permute(0, 2, 3, 1), n.normalized_shape, n.weight, n.bias, n.eps)).permute(0, 3, 1, 2)
        return x[:, :, 0, :]
import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
qm = Blocks(fe32).to(memory_format=torch.channels_last).eval()
count = torch.export.Dim("n", min=1, max=8)
with torch.no_grad():
    exported = torch.export.export(qm, (cal[:3].clone(),), dynamic_shapes=({0: count},), strict=False).module()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    quantizer.set_module_name_qconfig("convs.0", None)
    prepared = prepare_pt2e(exported, quantizer)
    for i in range(0, len(cal), 8): prepared(cal[i:i + 8])
    graph = convert_pt2e(prepared)
    ep = torch.export.export(graph, (cal[:3].clone(),), dynamic_shapes=({0: count},), strict=False)
    pkg = os.path.join(tempfile.mkdtemp(), "q.pt2")
    t = time.perf_counter()
    torch._inductor.aoti_compile_and_package(ep, package_path=pkg, inductor_configs={"freezing": True})
    print("build %.1f s" % (time.perf_counter() - t), flush=True)
run = torch._inductor.aoti_load_package(pkg)
bf = comp._footprint_front_end_run
with torch.inference_mode():
    for g in (8, 4, 2, 1):
        x = ev[:g].contiguous(); ref = fe32._orig_forward(x) if hasattr(fe32, "_orig_forward") else qm(x)
        for n, f in (("int8", run), ("bf16", bf)):
            y = f(x).float(); print(g, n, "rel vs fp32 %.2e" % ((y - ref).norm() / ref.norm()).item())
    x = ev[:8].contiguous()
    fns = {"bf16 artefact": bf, "int8 artefact": run}
    ts = {n: [] for n in fns}
    for r in range(30):
        items = list(fns.items()); items = items if r % 2 == 0 else items[::-1]
        for n, f in items:
            t = time.perf_counter()
            for _ in range(5): f(x)
            ts[n].append((time.perf_counter() - t) / 5 * 1000)
    for n in fns: print(n, "%.2f ms" % statistics.median(ts[n]), "x%.2f vs bf16" % statistics.median([a / b for a, b in zip(ts["bf16 artefact"], ts[n])]))
