"""GPU probe: the paper's large wav2vec 2.0 (random weights) over a dev-clean-shaped workload, in dtypes, TF32
settings and batch sizes that ``footprint bench run --arch`` does not sweep (its ``arch-*`` rows run the group-norm
large model at batch 1, and TF32 is left at torch's defaults; see docs/gpu-review.md).

The architecture and the workload are the suite's own (``core.arch.wav2vec2_config("large")``,
``bench.workload.arch_workload``: same seeds, so the same audio as the suite's ``arch-large-L*`` rows, whose fp32
batch-1 ``model_s`` this probe's ``fp32 b1`` figure should match).

1. tolerance: logits of each dtype vs fp32 (TF32 off) on TOL_UTTS utterances at batch 1: relative RMS error
   ||y - y32|| / ||y32|| and frame argmax agreement; a dtype passes when rel_rms <= --tol-rel-rms;
2. dtype sweep at L24, one batch size: model time of the full workload per dtype;
3. batch sweep at L24 with the fastest passing dtype (and fp32): model time per batch size, padded length-sorted
   buckets (padding changes group-norm outputs; irrelevant for timing, stated);
4. L12, L8, L6 at the best batch (fastest dtype and fp32);
5. the paper's loop for the same model: fp32, batch 1, id order, each waveform made inside the loop, logits to the
   host and greedy-collapsed per utterance; wall time of the whole loop.
Timing: ``model_s`` = sum over batches of forward time, synchronised before and after each batch (as the suite);
``model_s_events`` = the same spans by CUDA events; ``pipelined_s`` = all batches already on the device, one
synchronisation at the end (no host bubbles); ``e2e_s`` = padding + host-to-device copy + model + argmax + collapse.
Every measurement checks --deadline-s first and is written to --out as it completes.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.workload import arch_workload
from core.arch import wav2vec2_config


def workload(fraction: float, seed: int = 0):
    wl = arch_workload(fraction, seed)
    return list(wl.durations), [wl.loader(i) for i in range(len(wl))], wl.full_audio_s


def model(layers: int, device: torch.device):
    from transformers import Wav2Vec2ForCTC

    cfg = wav2vec2_config("large", layers=layers)
    torch.manual_seed(0)
    FP32_WEIGHTS.clear()  # one model at a time
    return Wav2Vec2ForCTC(cfg).eval().to(device)


def plan(durs, batch: int, max_batch_s: float):
    order = sorted(range(len(durs)), key=lambda i: durs[i])
    out, cur = [], []
    for i in order:
        if cur and (len(cur) >= batch or durs[i] * (len(cur) + 1) > max_batch_s):
            out.append(cur)
            cur = []
        cur.append(i)
    return out + ([cur] if cur else [])


def pad(audio, idx):
    n = max(len(audio[i]) for i in idx)
    b = np.zeros((len(idx), n), np.float32)
    for k, i in enumerate(idx):
        b[k, :len(audio[i])] = audio[i]
    return torch.from_numpy(b)


DTYPES = {"fp32": (torch.float32, None, False), "tf32": (torch.float32, None, True),
          "bf16": (torch.bfloat16, None, False), "fp16": (torch.float16, None, False),
          "bf16-autocast": (torch.float32, torch.bfloat16, False)}


FP32_WEIGHTS: dict = {}  # id(model) -> its fp32 state dict: every dtype is cast from the fp32 originals


def setup(m, name: str):
    wdtype, auto, tf32 = DTYPES[name]
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32  # torch's default is True for convolutions: off for a true fp32 baseline
    sd = FP32_WEIGHTS.setdefault(id(m), {k: v.detach().clone() for k, v in m.state_dict().items()})
    m.to(wdtype).load_state_dict(sd)  # copy_ casts fp32 -> wdtype (no bf16 -> fp16 double rounding)
    return m, wdtype, auto


def forward(m, x, auto, dev):
    with torch.inference_mode(), torch.autocast(dev.type, dtype=auto or torch.bfloat16, enabled=auto is not None):
        return m(x).logits


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_pass(m, name, durs, audio, batch, max_batch_s, dev):
    m, wdtype, auto = setup(m, name)
    batches = plan(durs, batch, max_batch_s)
    host = [pad(audio, b) for b in batches]
    forward(m, host[-1].to(dev, wdtype), auto, dev)  # warm-up: the longest batch
    sync(dev)
    model_s = inputs_s = text_s = 0.0
    ev = []
    for x, b in zip(host, batches):
        t0 = time.perf_counter()
        xd = x.pin_memory().to(dev, non_blocking=True).to(wdtype) if dev.type == "cuda" else x.to(wdtype)
        sync(dev)
        t1 = time.perf_counter()
        e0 = torch.cuda.Event(enable_timing=True) if dev.type == "cuda" else None
        if e0:
            e0.record()
        y = forward(m, xd, auto, dev)
        if e0:
            e1 = torch.cuda.Event(enable_timing=True)
            e1.record()
            ev.append((e0, e1))
        sync(dev)
        t2 = time.perf_counter()
        ids = y.argmax(-1).cpu().numpy()
        for row in ids:  # greedy CTC collapse (blank 0), as the suite's text stage
            keep = row[np.r_[True, row[1:] != row[:-1]]]
            _ = keep[keep != 0]
        t3 = time.perf_counter()
        inputs_s, model_s, text_s = inputs_s + t1 - t0, model_s + t2 - t1, text_s + t3 - t2
    events_s = sum(a.elapsed_time(b) for a, b in ev) / 1e3 if ev else float("nan")
    dev_x = [x.to(dev, wdtype) for x in host]  # pipelined: inputs resident, one sync at the end
    sync(dev)
    t0 = time.perf_counter()
    for x in dev_x:
        forward(m, x, auto, dev)
    sync(dev)
    pipelined = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(dev) / 1e6 if dev.type == "cuda" else float("nan")
    del dev_x
    return {"model_s": model_s, "model_s_events": events_s, "pipelined_s": pipelined, "inputs_s": inputs_s,
            "text_s": text_s, "e2e_s": inputs_s + model_s + text_s, "batches": len(batches), "cuda_peak_mb": peak}


def paper_loop(m, durs, seed, dev, fraction):
    """fp32, batch 1, id order, each waveform made inside the loop (no files here: generated, not decoded)."""
    m, _, _ = setup(m, "fp32")
    wl = arch_workload(fraction, seed)
    t0 = time.perf_counter()
    model_s = 0.0
    for k in sorted(range(len(wl)), key=lambda k: wl.utt_ids[k]):  # id order, each waveform made in the loop
        x = torch.from_numpy(wl.loader(k))[None].to(dev)
        sync(dev)
        t1 = time.perf_counter()
        y = forward(m, x, None, dev)
        sync(dev)
        model_s += time.perf_counter() - t1
        row = y.argmax(-1)[0].cpu().numpy()
        _ = row[np.r_[True, row[1:] != row[:-1]]]
    return {"wall_s": time.perf_counter() - t0, "model_s": model_s, "n_utts": len(wl)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--fraction", type=float, default=1.0)
    p.add_argument("--layers", default="24,12,8,6")
    p.add_argument("--dtypes", default="fp32,tf32,bf16,fp16,bf16-autocast")
    p.add_argument("--dtype-batch", type=int, default=16, help="batch size of the dtype sweep")
    p.add_argument("--batch-sizes", default="1,4,8,16,32,64")
    p.add_argument("--max-batch-seconds", type=float, default=960.0)
    p.add_argument("--tol-utts", type=int, default=8)
    p.add_argument("--tol-rel-rms", type=float, default=0.02, help="pass: ||y-y32||/||y32|| at most this")
    p.add_argument("--deadline-s", type=float, default=150.0, help="stop starting new measurements after this")
    p.add_argument("--no-paper-loop", action="store_true")
    p.add_argument("--out", default="arch_probe.json")
    a = p.parse_args()
    t_start = time.perf_counter()
    dev = torch.device(a.device)
    res = {"device": a.device, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "", "fraction": a.fraction,
           "tolerance": {"rel_rms_max": a.tol_rel_rms, "utterances": a.tol_utts, "reference": "fp32, TF32 off"},
           "tol": {}, "dtype_sweep": {}, "batch_sweep": {}, "depths": {}, "paper_loop": None, "skipped": []}

    def save():
        res["elapsed_s"] = time.perf_counter() - t_start
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)

    def left() -> float:
        return a.deadline_s - (time.perf_counter() - t_start)

    durs, audio, full_s = workload(a.fraction)
    res.update(n_utts=len(durs), audio_s=float(sum(durs)), full_audio_s=full_s)
    print(f"workload: {len(durs)} utterances, {sum(durs) / 3600:.2f} h (of {full_s / 3600:.2f} h); "
          f"made in {time.perf_counter() - t_start:.1f} s", flush=True)
    layers = [int(x) for x in a.layers.split(",")]
    m = model(layers[0], dev)
    # 1. tolerance
    pick = [int(round(k * (len(durs) - 1) / max(1, a.tol_utts - 1))) for k in range(min(a.tol_utts, len(durs)))]
    m, _, _ = setup(m, "fp32")
    ref = [forward(m, torch.from_numpy(audio[i])[None].to(dev), None, dev).float().cpu() for i in pick]
    passing = []
    for name in a.dtypes.split(","):
        m, wdtype, auto = setup(m, name)
        num = den = agree = frames = 0.0
        for i, r in zip(pick, ref):
            y = forward(m, torch.from_numpy(audio[i])[None].to(dev, wdtype), auto, dev).float().cpu()
            num += float(((y - r) ** 2).sum())
            den += float((r ** 2).sum())
            agree += float((y.argmax(-1) == r.argmax(-1)).sum())
            frames += r.shape[1]
        rel = (num / den) ** 0.5 if den else float("nan")
        ok = bool(rel <= a.tol_rel_rms)
        res["tol"][name] = {"rel_rms": rel, "argmax_agree": agree / frames, "pass": ok}
        print(f"tolerance {name}: rel RMS {rel:.2e}, argmax agreement {agree / frames:.4f} -> "
              f"{'pass' if ok else 'FAIL'} (max {a.tol_rel_rms})", flush=True)
        if ok:
            passing.append(name)
    save()
    L0 = layers[0]

    def run(label, name, batch, store):
        if left() < 5:
            res["skipped"].append(label)
            print(f"{label}: skipped (deadline)", flush=True)
            return None
        r = time_pass(m, name, durs, audio, batch, a.max_batch_seconds, dev)
        r.update(dtype=name, batch=batch)
        store[label] = r
        print(f"{label}: model {r['model_s']:.2f} s (events {r['model_s_events']:.2f}, pipelined "
              f"{r['pipelined_s']:.2f}), e2e {r['e2e_s']:.2f} s, {r['batches']} batches, peak "
              f"{r['cuda_peak_mb']:.0f} MB", flush=True)
        save()
        return r

    # 2. dtype sweep
    for name in passing:
        run(f"L{L0} {name} b{a.dtype_batch}", name, a.dtype_batch, res["dtype_sweep"])
    timed = {v["dtype"]: v["model_s"] for v in res["dtype_sweep"].values()}
    fastest = min(timed, key=timed.get) if timed else "fp32"
    res["fastest_dtype"] = fastest
    print(f"fastest dtype within tolerance at batch {a.dtype_batch}: {fastest}", flush=True)
    # 3. batch sweep
    best = {}
    for name in dict.fromkeys([fastest, "fp32"]):
        for b in [int(x) for x in a.batch_sizes.split(",")]:
            r = run(f"L{L0} {name} b{b}", name, b, res["batch_sweep"])
            if r and (name not in best or r["model_s"] < best[name][1]):
                best[name] = (b, r["model_s"])
    res["best_batch"] = {k: {"batch": v[0], "model_s": v[1]} for k, v in best.items()}
    # 4. other depths
    for n in layers[1:]:
        m = model(n, dev)
        for name in dict.fromkeys([fastest, "fp32"]):
            run(f"L{n} {name} b{best.get(name, (1,))[0]}", name, best.get(name, (1,))[0], res["depths"])
    # 5. the paper's loop, L24 fp32
    if not a.no_paper_loop:
        if left() > 20:
            m = model(L0, dev)
            res["paper_loop"] = paper_loop(m, durs, 0, dev, a.fraction)
            print(f"paper loop L{L0} fp32 batch 1, id order: wall {res['paper_loop']['wall_s']:.2f} s, model "
                  f"{res['paper_loop']['model_s']:.2f} s", flush=True)
        else:
            res["skipped"].append("paper loop")
    save()
    print(f"probe done in {time.perf_counter() - t_start:.0f} s -> {a.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
