"""AOTInductor build of the front end's window groups with and without AOTI's precompiled headers: seconds and
what lands in /tmp/torchinductor_<user>/precompiled_headers."""
import os, time, tempfile, subprocess, logging, warnings, torch
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
from compress.methods.front_end_artefact import WindowBlocks
fe = load_variant("front-end-bf16").model.wav2vec2.feature_extractor
w = fe._footprint_front_end_windows
mod = WindowBlocks(fe.conv_layers, fe._footprint_front_end_plan, torch.bfloat16).eval()
ep = torch.export.export(mod, (torch.zeros(3, w.samples),), dynamic_shapes=({0: torch.export.Dim("n", min=1, max=8)},), strict=False)
pch = "/tmp/torchinductor_root/precompiled_headers"
du = lambda: subprocess.run(["du", "-sm", pch], capture_output=True, text=True).stdout.split("\t")[0] if os.path.isdir(pch) else "0"
for flag in (True, False, True, False):
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp()
    before = du(); t = time.perf_counter()
    torch._inductor.aoti_compile_and_package(ep, package_path=os.path.join(tempfile.mkdtemp(), "p.pt2"),
                                             inductor_configs={"freezing": False, "aot_inductor.precompile_headers": flag})
    print(f"precompile_headers={flag}: {time.perf_counter() - t:.1f} s, precompiled_headers {before} -> {du()} MB", flush=True)
