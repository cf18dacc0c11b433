"""Teacher vs the static int8 chain vs the same chain with its front end's convs 2..7 in int8 (PT2E static,
calibrated on 16 train-clean utterances' windows; conv1 fp32) compiled per window-group shape: WER over the embedded
dev-clean (300 utterances, Transcriber) and interleaved timing on real batches of 8; 2 threads."""
import os, glob, time, statistics, logging, warnings, torch, numpy as np, soundfile as sf, jiwer
import torch.nn.functional as F
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
import torch._inductor.config as ic
from compress.variants import load_variant
from core.inference import Transcriber
SPEC = os.environ.get("SPEC", "front-end-bf16+int8-inductor-static-bf16")
teacher = load_variant("embedded").model
chain = load_variant(SPEC).model
chain2 = load_variant(SPEC).model
fe = chain2.wav2vec2.feature_extractor
w = fe._footprint_front_end_windows
window = w.stride * (w.frames - 1) + w.field
root = os.path.expanduser("~/.cache/w2v-footprint/corpus/synth-7c564b11e30b/LibriSpeech/")
def norm(a): return (a - a.mean()) / np.sqrt(a.var() + 1e-7)
train = sorted(glob.glob(root + "train-clean/*/*/*.flac"))[::400][:16]
cal = []
for f in train:
    a = torch.from_numpy(norm(sf.read(f, dtype="float32")[0]))
    for s in range(0, len(a) - window, w.stride * w.frames): cal.append(a[s:s + window])
cal = torch.stack(cal); print("calibration windows", len(cal))
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
qm = Blocks(fe).to(memory_format=torch.channels_last).eval()
with torch.no_grad():
    exported = torch.export.export(qm, (cal[:8].clone(),), dynamic_shapes=({0: torch.export.Dim("b", min=1, max=8)},), strict=False).module()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    quantizer.set_module_name_qconfig("convs.0", None)
    prepared = prepare_pt2e(exported, quantizer)
    for i in range(0, len(cal), 8): prepared(cal[i:i + 8])
    graph = convert_pt2e(prepared)
with ic.patch(freezing=True):
    qc = torch.compile(graph, dynamic=False)
    fe.__dict__['_blocks_forward'] = lambda t: qc(t.float())
    models = {"teacher": teacher, "chain": chain, "chain+int8fe": chain2}
    dev = sorted(glob.glob(root + "dev-clean/*/*/*.flac"))
    refs = {}
    for t in glob.glob(root + "dev-clean/*/*/*.trans.txt"):
        for line in open(t):
            k, txt = line.strip().split(" ", 1); refs[k] = txt
    auds = [sf.read(f, dtype="float32")[0] for f in dev]
    truth = [refs[os.path.basename(f)[:-5]] for f in dev]
    with torch.inference_mode():
        for k, m in models.items():
            t = time.perf_counter()
            hyp = Transcriber(m).transcribe(auds)
            print(f"{k}: WER {100 * jiwer.wer(truth, hyp):.2f} % ({time.perf_counter() - t:.1f} s)", flush=True)
        def batch(S):
            pick = sorted(auds, key=lambda a: abs(len(a) / 16000 - S))[:8]
            L = max(len(a) for a in pick); x = torch.zeros(8, L); mm = torch.zeros(8, L, dtype=torch.long)
            for i, a in enumerate(pick): x[i, :len(a)] = torch.from_numpy(norm(a)); mm[i, :len(a)] = 1
            return x, mm, L / 16000
        for S in [float(s) for s in os.environ.get("SECS", "5,2.5,8").split(",")]:
            x, m, L = batch(S)
            for mm in models.values():
                for _ in range(2): mm(x, attention_mask=m)
            ts = {k: [] for k in models}
            for r in range(int(os.environ.get("REPS", 11))):
                items = list(models.items()); items = items if r % 2 == 0 else items[::-1]
                for k, mm in items:
                    t = time.perf_counter(); mm(x, attention_mask=m); ts[k].append(time.perf_counter() - t)
            med = {k: 1e3 * statistics.median(v) for k, v in ts.items()}
            sp = {k: statistics.median([a / b for a, b in zip(ts["teacher"], ts[k])]) for k in ("chain", "chain+int8fe")}
            print(f"8 x {L:.2f} s: " + ", ".join(f"{k} {v:.0f} ms" for k, v in med.items()) + f"; paired x{sp['chain']:.2f} -> x{sp['chain+int8fe']:.2f}", flush=True)
