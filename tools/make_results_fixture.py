"""Write tests/fixtures/results_small: a small, plausible results run for the reports tests and the notebook.

The numbers are MADE UP (shaped like a CPU + GPU run of the embedded teacher, its students and variants, plus
architecture-only timing of the large model), not a measurement.  Deterministic: a fixed seed, fixed timestamps,
fixed float formatting; tests/test_reports_fixture.py regenerates it and checks it is unchanged.

    python tools/make_results_fixture.py [OUT_DIR]     # default: tests/fixtures/results_small
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.schema import EXTRA_COLUMNS  # noqa: E402
from reports.load import SCHEMA_COLUMNS  # noqa: E402  (after the path tweak, for running from a clean clone)

RUN_ID = "fixture-0001"
DATASET = "embedded:dev-clean"
MANIFEST = "sha256:3f2a9c0d5e6b7a8f91c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4"
N_UTTS, AUDIO_S = 200, 1440.0          # 200 synthetic utterances, mean 7.2 s like dev-clean
ARCH_N_UTTS, ARCH_AUDIO_S = 27, 194.4  # architecture-only timing: 1 % of dev-clean's shape
REPEATS = 3
CARBON = (475.0, "CodeCarbon global average (no country given)")
CPU_DETAIL = ("CodeCarbon 3.3 OfflineEmissionsTracker, process mode; no RAPL: CPU = per-thread constant x load, "
              "RAM = 20 W constant")
GPU_DETAIL = "NVML total-energy counter (nvmlDeviceGetTotalEnergyConsumption), GPU 0 board energy, idle not subtracted"
# One transformer layer of the large configuration: attention 4 x (1024^2 + 1024), feed-forward
# 2 x 1024 x 4096 + 4096 + 1024, two layer norms 4 x 1024.
LAYER_PARAMS = 12_596_224
LARGE_PARAMS = 315_461_792

# variant, recipe, transformer layers, conv layers, params, size_mb, size_on_disk_mb, sparsity,
# cpu model_s (median), gpu model_s (None: not on GPU), wer
TRAINED = [
    ("teacher", "baseline", 12, 7, 9_612_576, 38.45, 38.47, 0.0, 61.0, 2.9, 0.041),
    ("distill-L6", "distill-L6", 6, 7, 4_869_408, 19.48, 19.50, 0.0, 33.5, 1.8, 0.079),
    ("distill-L4", "distill-L4", 4, 7, 3_288_352, 13.15, 13.17, 0.0, 24.2, 1.45, 0.118),
    ("distill-L3", "distill-L3", 3, 7, 2_497_824, 9.99, 10.01, 0.0, 19.8, 1.27, 0.162),
    ("distill-L2", "distill-L2", 2, 7, 1_707_296, 6.83, 6.85, 0.0, 15.1, 1.10, 0.275),
    ("int8-dynamic", "int8-dynamic", 12, 7, 9_612_576, 10.31, 10.52, 0.0, 43.9, None, 0.043),
    ("distill-L4+int8", "distill-L4+int8-dynamic", 4, 7, 3_288_352, 4.02, 4.10, 0.0, 17.6, None, 0.121),
    ("prune-sensitivity", "prune-sensitivity", 12, 7, 9_612_576, 38.45, 29.80, 0.231, 60.4, 2.9, 0.042),
    ("maxpool-conv4", "maxpool-conv4", 4, 4, 2_890_016, 11.56, 11.58, 0.0, 29.7, 1.21, 0.131),
]
ARCH = [(n, LARGE_PARAMS - (24 - n) * LAYER_PARAMS) for n in (24, 12, 10, 8, 6)]

CPU_W, GPU_W = 31.0, 118.0  # the (estimated / measured) average draw these figures imply

# What making each variant cost (its folder's making record, copied to every row; core/making.py): wall s, kWh,
# label.  The teacher's GPU pre-training measured, the students' distillation estimated from logged time at CPU_W;
# the rest (built in-process, or imported) have no record: "not recorded", never zero.  Written once the results
# schema has the columns (core.schema extras), so the fixture never carries a column the store would refuse.
MAKING_COLUMNS = tuple(c for c in ("making_wall_s", "making_energy_kwh", "making_co2_kg", "making_label",
                                   "making_measured") if c in EXTRA_COLUMNS)
MAKING = {
    "teacher": (28800.0, 3.4, "measured (nvml)"),
    "distill-L6": (3600.0, 0.031, "estimated (estimated from logged time)"),
    "distill-L4": (7200.0, 0.062, "estimated (estimated from logged time)"),
    "distill-L3": (3000.0, 0.02583333, "estimated (estimated from logged time)"),
    "distill-L2": (2400.0, 0.02066667, "estimated (estimated from logged time)"),
    "maxpool-conv4": (18000.0, 0.155, "estimated (estimated from logged time)"),
}


def _row(rng: np.random.Generator, *, variant: str, recipe: str, weights: str, device: str, repeat: int,
         n_utts: int, audio_s: float, model_s: float, wer: float | None, params: int, size_mb: float,
         size_on_disk_mb: float, sparsity: float, conv: int, layers: int, ts: int) -> dict[str, object]:
    gpu = device == "cuda"
    jitter = float(rng.normal(1.0, 0.04))  # shared machines drift; repeats differ by a few percent
    model = model_s * jitter
    decode = audio_s * 0.0021          # audio file decoding (bench's decode_s), timed separately
    text = n_utts * 0.0009             # greedy CTC to text (bench's text_s, not a contract column)
    e2e = model + decode + text
    wall = e2e + 0.4
    watts = (GPU_W if gpu else CPU_W) * float(rng.normal(1.0, 0.02))
    energy_j = watts * wall
    kwh = energy_j / 3.6e6
    co2 = kwh * CARBON[0] / 1000.0
    hours = audio_s / 3600.0
    return {
        "schema_version": 1, "run_id": RUN_ID, "variant": variant, "recipe": recipe,
        "model_path": (f"students/{variant}" if recipe.startswith("distill-L4") and "+" not in recipe
                       else (f"arch:large:L{layers}" if weights == "random" else f"variants/{variant}")),
        "weights": weights, "device": device,
        "device_name": "NVIDIA H100 80GB HBM3" if gpu else "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
        "threads": 2, "batch_size": 1, "repeat": repeat, "n_utts": n_utts, "n_skipped": 0,
        "audio_s": round(audio_s, 3), "wall_s": round(wall, 4), "model_s": round(model, 4),
        "decode_s": round(decode, 4), "e2e_s": round(e2e, 4), "rtf": round(model / audio_s, 6),
        "rtfx": round(audio_s / model, 3),
        "wer": "" if wer is None else round(wer, 4), "cer": "" if wer is None else round(wer * 0.37, 4),
        "params": params, "size_mb": size_mb, "size_on_disk_mb": size_on_disk_mb, "sparsity": sparsity,
        "conv_layers": conv, "transformer_layers": layers,
        "peak_rss_mb": round(350 + size_mb * 2.2, 1), "cuda_max_alloc_mb": round(size_mb * 1.3 + 90, 1) if gpu else "",
        "energy_j": round(energy_j, 2), "energy_kwh": f"{kwh:.8f}",
        "energy_method": "nvml" if gpu else "codecarbon-offline",
        "energy_measured": gpu, "energy_source_detail": GPU_DETAIL if gpu else CPU_DETAIL,
        "co2_kg": f"{co2:.8f}", "carbon_intensity_g_per_kwh": CARBON[0], "carbon_intensity_source": CARBON[1],
        "kwh_per_audio_hour": f"{kwh / hours:.8f}", "co2_kg_per_audio_hour": f"{co2 / hours:.8f}",
        "manifest_hash": MANIFEST, "dataset": DATASET, "git_commit": "c7bc71f0d1e2",
        "torch_version": "2.13.0", "transformers_version": "5.0.0", "python_version": "3.11.2",
        "cpu_model": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
        "gpu_name": "NVIDIA H100 80GB HBM3" if gpu else "", "hostname": "bench-host",
        "timestamp": f"2025-01-15T10:{ts // 60:02d}:{ts % 60:02d}+00:00",
        **{k: v for k, v in making(variant).items() if k in MAKING_COLUMNS},
    }


def making(variant: str) -> dict[str, object]:
    if variant not in MAKING:
        return {"making_wall_s": "", "making_energy_kwh": "", "making_co2_kg": "", "making_label": "not recorded",
                "making_measured": ""}
    wall, kwh, label = MAKING[variant]
    return {"making_wall_s": wall, "making_energy_kwh": f"{kwh:.8f}",
            "making_co2_kg": f"{kwh * CARBON[0] / 1000.0:.8f}", "making_label": label,
            "making_measured": label.startswith("measured")}


def rows() -> list[dict[str, object]]:
    rng = np.random.default_rng(20250115)
    out: list[dict[str, object]] = []
    ts = 0
    for device in ("cpu", "cuda"):
        # Variants interleaved within each repeat, as the runner does.
        for repeat in range(REPEATS):
            for variant, recipe, layers, conv, params, size, disk, sparsity, cpu_s, gpu_s, wer in TRAINED:
                model_s = gpu_s if device == "cuda" else cpu_s
                if model_s is None:
                    continue
                out.append(_row(rng, variant=variant, recipe=recipe, weights="trained", device=device, repeat=repeat,
                                n_utts=N_UTTS, audio_s=AUDIO_S, model_s=model_s, wer=wer, params=params,
                                size_mb=size, size_on_disk_mb=disk, sparsity=sparsity, conv=conv, layers=layers,
                                ts=ts))
                ts += 7
            for layers, params in ARCH:
                size = round(params * 4 / 1e6, 2)
                # Large-config timing: about 7x the per-layer cost of the teacher, on 1 % of dev-clean.
                base = (2.6 if device == "cpu" else 0.031) * layers + (9.0 if device == "cpu" else 0.35)
                out.append(_row(rng, variant=f"arch-large-L{layers}", recipe=f"arch-large-L{layers}",
                                weights="random", device=device, repeat=repeat, n_utts=ARCH_N_UTTS,
                                audio_s=ARCH_AUDIO_S, model_s=base, wer=None, params=params, size_mb=size,
                                size_on_disk_mb=size, sparsity=0.0, conv=7, layers=layers, ts=ts))
                ts += 7
    return out


def train_log(epochs: int, start: float, floor: float, rate: float, hours: float, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    out = []
    steps_per_epoch = int(hours * 3600 / 7.2)
    for e in range(1, epochs + 1):
        wer = floor + (start - floor) * np.exp(-rate * (e - 1)) + float(rng.normal(0, 0.002))
        kd = 0.9 * np.exp(-0.25 * e) + 0.12
        penalty = 0.02 + 0.01 * np.exp(-0.3 * e)
        lr = 2.5e-5 * (e / 2 if e <= 2 else max(0.0, (epochs - e) / (epochs - 2)))
        out.append({"epoch": e, "step": e * steps_per_epoch, "train_loss": round(kd + penalty, 5),
                    "kd_loss": round(kd, 5), "feature_penalty": round(penalty, 5), "ctc_loss": "",
                    "lr": f"{lr:.3e}", "dev_wer": round(wer, 4), "dev_cer": round(wer * 0.38, 4),
                    "wall_s": round(e * hours * 95.0, 1), "audio_hours": round(e * hours, 3)})
    return out


def write_csv(path: Path, records: list[dict[str, object]], columns: list[str] | tuple[str, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        w.writerows(records)


def main(out: Path) -> None:
    write_csv(out / "results.csv", rows(), (*SCHEMA_COLUMNS, *MAKING_COLUMNS))
    meta = {
        "fixture": "made-up numbers for tests, written by tools/make_results_fixture.py; not a measurement",
        "run_id": RUN_ID, "schema_version": 1,
        "command": "footprint bench run --models baseline,distill-L6,distill-L4,distill-L3,distill-L2,int8-dynamic,"
                   "distill-L4+int8-dynamic,prune-sensitivity,maxpool-conv4 --arch large --layers 24,12,10,8,6 "
                   "--data embedded:dev-clean --device cpu,cuda --repeats 3",
        "data": DATASET, "devices": ["cpu", "cuda"], "repeats": REPEATS, "warmup": 1, "threads": 2,
        "batch_size": 1, "arch_fraction": 0.01,
        "energy": {"cpu": "codecarbon-offline", "cuda": "nvml", "idle_baseline": False},
        "carbon_intensity": {"g_per_kwh": CARBON[0], "source": CARBON[1]},
        # As bench's runner writes it: what each time column measures.
        "timing": {
            "wall_s": "whole timed repeat (perf_counter), inside the energy window",
            "decode_s": "audio file decoding (soundfile)",
            "model_s": "forward pass only; wall time after torch.cuda.synchronize on GPU",
            "e2e_s": "decode_s + inputs_s + model_s + text_s",
            "rtfx": "audio_s / model_s (model only)",
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    cols = ["epoch", "step", "train_loss", "kd_loss", "feature_penalty", "ctc_loss", "lr", "dev_wer", "dev_cer",
            "wall_s", "audio_hours"]
    # Figure 1: alternate vs last init (same data); Figure 2: the same student on a quarter of the data.
    logs = {
        "distill-L4": (train_log(10, 0.52, 0.115, 0.45, 2.0, 1), {"init": "alternate", "train_hours": 2.0}),
        "distill-L4-last": (train_log(10, 0.93, 0.205, 0.30, 2.0, 2), None),  # init from the folder name
        "distill-L4-quarter": (train_log(10, 0.60, 0.170, 0.40, 0.5, 3), {"init": "alternate", "train_hours": 0.5}),
    }
    for name, (records, config) in logs.items():
        write_csv(out / "students" / name / "train_log.csv", records, cols)
        if config is not None:
            variant = {"recipe": "distill-L4", "config": config, "transformer_layers": 4, "conv_layers": 7}
            (out / "students" / name / "variant.json").write_text(json.dumps(variant, indent=2) + "\n",
                                                                  encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "fixtures" / "results_small")
