"""What the runner writes beside the rows: meta.json's run description and totals, the hypotheses files."""
from __future__ import annotations

import datetime as _dt
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence


def start_meta(run: Any, argv: Sequence[str] | None, prov: Any) -> None:
    """meta.json's description of the run (``run`` is the runner's state), written on rank 0."""
    import torch

    from bench import onednn
    from core import provenance, results

    cfg, data_wl = run.cfg, run.data_wl
    if not run.meta:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        run.meta = {"run_id": f"{stamp}-{run.chash[:8]}", "schema_version": results.SCHEMA_VERSION,
                    "config_hash": run.chash, "created": provenance.now_iso()}
    run.meta.update({
        "command": command(argv),
        "config": asdict(cfg), "data": cfg.data, "dataset": cfg.data, "manifest_hash": run.manifest_hash,
        "n_utts": len(data_wl) if data_wl else 0, "audio_s": data_wl.audio_s if data_wl else 0.0,
        "devices": cfg.devices, "repeats": cfg.repeats, "warmup": cfg.warmup, "batch_size": cfg.batch_size,
        "threads": torch.get_num_threads(), "onednn_primitive_cache": os.environ.get(onednn.ENV),
        "onednn_primitive_cache_in_effect": run.onednn_cache,
        "arch_fraction": {d: w.fraction for d, w in run.arch_wls.items()},
        "world_size": run.ctx.world_size, "provenance": prov.as_dict(),
        "jobs": [j.as_meta() for j in run.jobs], "timing": TIMING_NOTES,
    })
    run.meta.setdefault("attempts", []).append(provenance.now_iso())
    run.meta.setdefault("skipped", [])
    run.write_meta()


def command(argv: Sequence[str] | None) -> str:
    if argv is not None:
        return " ".join(argv)
    prog = Path(sys.argv[0]).name
    prog = "python -m bench" if prog == "__main__.py" else prog
    return " ".join([prog, *sys.argv[1:]])


TIMING_NOTES = {
    "wall_s": "whole timed repeat (perf_counter), inside the energy window",
    "decode_s": "audio file decoding (soundfile); NaN for generated random audio",
    "inputs_s": "normalisation, padding, host-to-device copy",
    "model_s": "forward pass only; wall time after torch.cuda.synchronize on GPU (CUDA events in model_s_cuda_events)",
    "text_s": "CTC argmax + greedy decoding",
    "e2e_s": "decode_s + inputs_s + model_s + text_s",
    "rtfx": "audio_s / model_s (model only); audio_s / e2e_s gives the end-to-end figure",
    "energy": "one window per repeat around wall_s; joules per component in energy_components_j, each labelled "
              "measured or estimated in energy_components_measured; energy_j is the gross total",
    "idle baseline": "with a hardware counter, idle power measured first (default 10 s); energy_j_net = energy_j "
                     "minus idle power x wall time, measured components only",
    "peak_rss_mb": "process peak RSS during the repeat (VmHWM reset per repeat); every loaded variant counts",
    "variant_peak_mb": "memory the variant's own pass needs: weights + activations of its heaviest batch, measured "
                       "once per variant x device with only it loaded (variant_peak_method says how; bench/memory.py)",
    "others_cpu_s": "CPU seconds the rest of the machine used during the repeat (system-wide busy - this process); "
                    "contended: > 0.10 of one core on average and > 0.05 s (bench/trackers.py)",
    "batched": "warm: every timed repeat runs the lengths (padded shapes) the accuracy pass and warm-up ran, as a "
               "batch job re-running a fixed set; kernels are never built inside a timed span",
    "unseen": "each timed repeat runs held-out utterances whose lengths this process never ran (bench/unseen.py), "
              "as a server meets; kernels for the new shapes are built inside the timed span; wer over that subset",
    "shapes_reused": "batches of the repeat whose padded shape the variant had already run in this process",
    "one-time": "load_s: building the variant in this process (includes compile_s, calibration_s, export_s done "
                "then), or in the side process where that build was the cold one (side_builds); compile_cache "
                "cold | warm: whether the persistent compile cache held the artefacts",
    "paper-loop": "batch 1 in id order, each file decoded inside the loop, as the paper's DataLoader",
    "multi-rank": "model_s/wall_s: slowest rank; audio_s, energy: summed (machine-wide meters once per host)",
}


def totals(store: Any, run_id: str) -> dict[str, Any]:
    """kWh and CO2 of the whole run (all timed repeats) per device, and per hour of audio."""
    out: dict[str, Any] = {}
    for r in store.rows():
        if r.get("run_id") != run_id:
            continue
        t = out.setdefault(r["device"], {"repeats": 0, "audio_s": 0.0, "wall_s": 0.0, "energy_kwh": 0.0,
                                         "co2_kg": 0.0, "energy_methods": []})
        t["repeats"] += 1
        t["audio_s"] += r.get("audio_s") or 0.0
        t["wall_s"] += r.get("wall_s") or 0.0
        t["energy_kwh"] += r.get("energy_kwh") or 0.0
        t["co2_kg"] += r.get("co2_kg") or 0.0
        if r.get("energy_method") not in t["energy_methods"]:
            t["energy_methods"].append(r.get("energy_method"))
    for t in out.values():
        hours = t["audio_s"] / 3600.0
        t["kwh_per_audio_hour"] = t["energy_kwh"] / hours if hours else None
        t["co2_kg_per_audio_hour"] = t["co2_kg"] / hours if hours else None
        t["note"] = "timed repeats only; accuracy passes are in the passes table (energy_j per pass)"
    return out


def save_hyps(run_dir: Path, variant: str, device: str, ids: list[str], refs: list[str], hyps: list[str]) -> None:
    d = run_dir / "hyps"
    d.mkdir(exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in f"{variant}__{device}")
    with (d / f"{safe}.tsv").open("w") as f:
        f.write("utt_id\treference\thypothesis\n")
        for i, r, h in sorted(zip(ids, refs, hyps)):
            f.write(f"{i}\t{r}\t{h}\n")
