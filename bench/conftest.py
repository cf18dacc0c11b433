"""pytest-benchmark face of the runner: ``pytest bench --benchmark-json out.json``.

Cases are variant x device (ids like ``embedded-cpu``, ``int8-dynamic-cpu``, ``baseline-cuda``).  Once per
session the runner's accuracy pass and one timed repeat run into a results folder; each benchmark's
``extra_info`` (wer, cer, size_mb, params, sparsity, energy_kwh, energy_method, energy_measured, variant_peak_mb)
is read from those rows, never computed inside the timed call.  By default the cases are the paper's Table 1 rows
that exist here (TABLE1_MODELS: the teacher, int8, pruned, the 4-layer student, the max-pool student; a student
not shipped or trained is left out) on each visible device; a variant that cannot run on a device (int8 on CUDA)
is skipped with the reason.  Environment variables scale it:

  FOOTPRINT_BENCH_MODELS   comma-separated model specs (default: the Table 1 set, see TABLE1_MODELS)
  FOOTPRINT_BENCH_DEVICES  default cpu,cuda (cuda cases are skipped when no GPU is visible)
  FOOTPRINT_BENCH_DATA     default embedded:dev-clean
  FOOTPRINT_BENCH_LIMIT    utterances (default 8; 0 = all)
  FOOTPRINT_BENCH_ROUNDS   timed rounds (default 3), FOOTPRINT_BENCH_WARMUP warm-up rounds (default 1)
  FOOTPRINT_BENCH_ENERGY   meter chain for the runner's repeat (default auto)
  FOOTPRINT_BENCH_RUN_DIR  keep the runner's results here (default: a temporary folder)
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.onednn import ensure_cache

ensure_cache()  # pytest imports this before any benchmark imports torch: oneDNN reads the size once


def _env_list(name: str, default: str) -> list[str]:
    return [s.strip() for s in os.environ.get(name, default).split(",") if s.strip()]


@dataclass(frozen=True)
class Case:
    spec: str
    device: str

    @property
    def variant(self) -> str:
        from bench.runner import _spec_name

        return _spec_name(self.spec)

    @property
    def id(self) -> str:
        return f"{self.variant}-{self.device}"


# The paper's Table 1 rows as model specs: teacher, int8, pruned, the 4-layer student, the max-pool student.
TABLE1_MODELS: tuple[str, ...] = ("embedded", "int8-dynamic", "prune-sensitivity", "distill-L4", "maxpool-conv4")
TABLE1_STUDENTS: tuple[str, ...] = ("distill-L4", "maxpool-conv4")  # trained models: only those that exist


def default_models() -> list[str]:
    """TABLE1_MODELS less the students that are neither shipped nor trained (in $W2V_FOOTPRINT_STUDENTS)."""
    from compress.methods.students import default_students_dir

    root = default_students_dir()
    return [m for m in TABLE1_MODELS if m not in TABLE1_STUDENTS
            or (root / m / "config.json").exists() or (root / m / "variant.json").exists()]


def bench_models() -> list[str]:
    return _env_list("FOOTPRINT_BENCH_MODELS", "") or default_models()


def bench_cases() -> list[Case]:
    return [Case(m, d) for m in bench_models() for d in _env_list("FOOTPRINT_BENCH_DEVICES", "cpu,cuda")]


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        cases = bench_cases()
        metafunc.parametrize("case", cases, ids=[c.id for c in cases])


@dataclass
class BenchSession:
    """The runner's results for this session plus ready-to-time variants (loaded once per case)."""

    run_dir: Path
    rows: Any                                   # pandas DataFrame from core.results.load_results
    skipped: dict[tuple[str, str], str]
    _ready: dict[tuple[str, str], Any] = field(default_factory=dict)

    def extra_info(self, case: Case) -> dict[str, Any]:
        df = self.rows[(self.rows["variant"] == case.variant) & (self.rows["device"] == case.device)]
        if df.empty:
            return {}
        med = df.median(numeric_only=True)
        first = df.iloc[0]

        def num(v: Any) -> Any:
            try:
                f = float(v)
            except (TypeError, ValueError):
                return None
            return None if math.isnan(f) else f

        def flag(v: Any) -> Any:
            if v is None or str(v) in ("<NA>", "nan", "None"):
                return None
            return bool(v)

        # variant_peak_mb is a results column being added alongside this face (the variant's peak memory):
        # read from the rows when the column is there, None otherwise (older runners, older results).
        peak = num(med["variant_peak_mb"]) if "variant_peak_mb" in med.index else (
            num(first["variant_peak_mb"]) if "variant_peak_mb" in df.columns else None)
        return {"wer": num(first["wer"]), "cer": num(first["cer"]), "size_mb": num(first["size_mb"]),
                "params": int(first["params"]) if num(first["params"]) is not None else None,
                "sparsity": num(first["sparsity"]), "energy_kwh": num(med["energy_kwh"]),
                "energy_method": str(first["energy_method"]), "energy_measured": flag(first["energy_measured"]),
                "variant_peak_mb": peak,
                "rtfx_runner": num(med["rtfx"]), "n_utts": int(first["n_utts"]), "audio_s": num(first["audio_s"]),
                "results_dir": str(self.run_dir), "row_keys": list(df["row_key"])}

    def ready(self, case: Case, limit: int | None, data: str) -> Any:
        """(transcriber, workload, pre-decoded audio) for the timed call; audio decoding stays outside it."""
        key = (case.spec, case.device)
        if key not in self._ready:
            from core.data import resolve_data
            from core.data.librispeech import read_subset
            from core.inference import Transcriber
            from compress.variants import load_variant
            from bench.workload import from_manifest

            v = load_variant(case.spec, case.device)
            tr = Transcriber(v.model, do_normalize=v.do_normalize, device=case.device, batch_size=8, dtype=v.dtype)
            wl = from_manifest(read_subset(resolve_data(data)), data, limit)
            self._ready[key] = (tr, wl, [wl.loader(i) for i in range(len(wl))])
        return self._ready[key]


def bench_limit() -> int | None:
    n = int(os.environ.get("FOOTPRINT_BENCH_LIMIT", "8"))
    return n or None


@pytest.fixture(scope="session")
def bench_session(tmp_path_factory: pytest.TempPathFactory) -> BenchSession:
    from core.results import load_results
    from bench.runner import RunConfig, run_benchmark
    from compress.variants import import_loader_dependencies, load_variant

    import_loader_dependencies()  # before the runner's clock: its first build must not pay for the imports
    devices = [d for d in _env_list("FOOTPRINT_BENCH_DEVICES", "cpu,cuda") if d == "cpu" or cuda_available()]
    run_dir = Path(os.environ.get("FOOTPRINT_BENCH_RUN_DIR") or tmp_path_factory.mktemp("bench-run"))
    cfg = RunConfig(out=str(run_dir), models=bench_models(),
                    data=os.environ.get("FOOTPRINT_BENCH_DATA", "embedded:dev-clean"), devices=devices or ["cpu"],
                    repeats=1, warmup=1, limit=bench_limit(), energy=os.environ.get("FOOTPRINT_BENCH_ENERGY", "auto"),
                    overhead_pairs=0)
    from core.errors import FootprintError

    try:
        summary = run_benchmark(cfg, load_variant, progress=False, argv=["pytest", "bench"])
    except FootprintError as exc:  # e.g. the shipped teacher not trained yet: say so on every case
        pytest.skip(f"the runner could not run: {exc}")
    skipped = {(s["variant"], s["device"]): s["reason"] for s in summary.meta.get("skipped", [])}
    return BenchSession(run_dir, load_results(run_dir), skipped)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from core.provenance import collect

    import torch

    prov = collect()
    machine_info.update({
        "torch": prov.torch_version, "transformers": prov.transformers_version,
        "gpu": prov.gpu_name or None, "cuda_available": cuda_available(), "threads": torch.get_num_threads(),
        "git_commit": prov.git_commit, "git_dirty": prov.git_dirty, "cpu_model": prov.cpu_model,
    })
