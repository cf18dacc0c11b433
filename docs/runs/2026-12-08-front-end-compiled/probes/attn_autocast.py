"""The matmul attention on the teacher's captured q, k, v, as the int8-bf16 encoder runs it: exported in fp32 and
compiled (AOTInductor, dynamic) under bf16 autocast, called under autocast with fp32 or bf16 inputs; vs the bf16
export; per layer, interleaved; 2 threads."""
import os, tempfile, time, statistics, torch, logging, warnings
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "attn_aoti.py")).read().split("import torch._inductor.config as ic")[0].split('"""', 2)[2])
torch.set_num_threads(2)
class Attn(torch.nn.Module):
    def forward(self, q, k, v, keep): return matmul_attention(None, q, k, v, keep)[0]
b, t = torch.export.Dim("b", min=2, max=64), torch.export.Dim("t", min=2, max=5000)
shapes = ({0: b, 2: t}, {0: b, 2: t}, {0: b, 2: t}, {0: b, 3: t})
f32 = [(q.float(), k.float(), v.float(), keep.float()) for q, k, v, keep in cap]
bf = [(q.bfloat16(), k.bfloat16(), v.bfloat16(), keep.bfloat16()) for q, k, v, keep in cap]
def build(example, autocast):
    ep = torch.export.export(Attn(), example, dynamic_shapes=shapes, strict=False)
    pkg = os.path.join(tempfile.mkdtemp(), "a.pt2")
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        torch._inductor.aoti_compile_and_package(ep, package_path=pkg)
    return torch._inductor.aoti_load_package(pkg)
run_bf = build(bf[0], False)
run_ac = build(f32[0], True)
def ac(*a):
    with torch.autocast("cpu", torch.bfloat16):
        return run_ac(*a)
fns = {"bf16 export": (run_bf, bf), "fp32 export under autocast": (ac, f32)}
with torch.inference_mode():
    for f, data in fns.values():
        for a in data: f(*a)
    ts = {n: [] for n in fns}
    for r in range(15):
        for n, (f, data) in (list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]):
            t0 = time.perf_counter()
            for a in data: f(*a)
            ts[n].append((time.perf_counter() - t0) * 1000 / len(data))
    for n in fns: print(f"{n}: {statistics.median(ts[n]):.2f} ms per layer", flush=True)
