"""Cold builds beside the runner: a second process builds the variants the runner reaches last while the runner
builds the first ones.

Why: a compiled variant's first build (torch.export, Inductor's lowering, one C++ compiler) keeps about one core
busy for 13-54 s on a 2-vCPU EPYC.  Two such builds side by side took 49 s of wall time where one after the other
took 87 s, each within 10 % of its time alone; a first ``footprint run`` builds three, and its build phase takes
59 s instead of 110 s (docs/runs/2026-12-07d-front-end-windows).  What the side measures is a build beside other
work: next to the runner's memory children (two threads) the student's compiled encoder took 26 s in the side
against 13 s alone, and its row says so.

How: the side process walks the CPU jobs' specs from the end, the runner from the start; each claims a spec (a file
created exclusively in a folder both see) before building it, so no spec is built twice from a cold cache, and
the side stops at the first spec the runner claimed.  When the runner reaches a spec the side claimed, it waits for
the side's result, then builds the variant itself from the now warm compile cache (it needs the model in its own
process).  Where the side's build was the cold one, the row keeps the side's one-time figures (``load_s`` and the
compile, calibration and export seconds, ``compile_cache`` "cold") and its making cost, metered by the side's own
energy meter (the run's meter counts the runner's process only): that is what building the variant cost.  The side
runs the runner's intra-op threads (compiled code is built for them) and one Inductor compile worker
(``TORCHINDUCTOR_COMPILE_THREADS``); nothing it does is timed by the runner, and the runner times nothing until
the side has ended (``finish``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

# what a build costs once: the keys of a variant's info the row takes from the side's build when it was the cold one
ONE_TIME_KEYS = ("compile_s", "compile_cache", "calibration_s", "export_s", "compile_artefact", "artefact_build_s",
                 "artefact_load_s")
WAIT_POLL_S = 0.2


def _name(spec: str) -> str:
    return hashlib.sha1(spec.encode()).hexdigest()[:16]


def claim(folder: Path, spec: str) -> bool:
    """True when this process now owns ``spec``'s build (the claim file did not exist)."""
    try:
        fd = os.open(folder / f"{_name(spec)}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _result_path(folder: Path, spec: str) -> Path:
    return folder / f"{_name(spec)}.json"


def _write_result(folder: Path, spec: str, result: dict[str, Any]) -> None:
    tmp = folder / f"{_name(spec)}.tmp"
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, _result_path(folder, spec))


def _side(loader: Callable[[str, str], Any], specs: Sequence[str], folder: str, batch_size: int,
          max_batch_seconds: float, meter_kw: dict[str, Any], threads: int, env: dict[str, str]) -> int:
    """Runs in the side process: build ``specs`` in order until one is claimed already; returns how many it built."""
    os.environ.clear()
    os.environ.update(env)
    from core import console

    console.setup(child=True)
    import gc

    import torch

    from bench import energy
    from bench.memory import make_transcriber

    # the runner's count: Inductor compiles its parallel loops for it, and an artefact's key includes it; the build
    # itself is one core whatever this says (a compile worker count of 1 is set through the environment)
    torch.set_num_threads(threads)
    where = Path(folder)
    try:
        meter = energy.open_meter(meter_kw["chain"], "cpu", country_iso3=meter_kw["country_iso3"],
                                  carbon_intensity=meter_kw["carbon_intensity"])
    except Exception as exc:  # noqa: BLE001 - no meter: the builds still happen, their energy is not recorded
        log.warning("side builds: no energy meter (%s: %s)", type(exc).__name__, exc)
        meter = None
    built = 0
    try:
        for spec in specs:
            if not claim(where, spec):
                break
            label = f"side-build|{spec}"
            result: dict[str, Any] = {"spec": spec}
            try:
                if meter is not None:
                    meter.begin_window(label)
                t0 = time.perf_counter()
                try:
                    v = loader(spec, "cpu")
                    make_transcriber(v, "cpu", batch_size, max_batch_seconds)
                finally:
                    wall = time.perf_counter() - t0
                    m = meter.end_window(label) if meter is not None else None
                info = dict(getattr(v, "info", {}) or {})
                result.update(wall_s=wall, one_time={k: info[k] for k in ONE_TIME_KEYS if k in info},
                              measurement=dataclasses.asdict(m) if m is not None else None)
                built += 1
                del v
                gc.collect()
            except Exception as exc:  # noqa: BLE001 - the runner builds it itself and reports its own failure
                result["error"] = f"{type(exc).__name__}: {exc}"[:300]
            _write_result(where, spec, result)
    finally:
        if meter is not None:
            meter.close()
    return built


@dataclass
class SideBuilds:
    """The side process and the folder its claims and results are in."""

    folder: Path
    future: Any
    executor: Any
    started: float

    def take(self, spec: str, timeout_s: float = 1800.0) -> dict[str, Any] | None:
        """Before the runner builds ``spec``: None when the runner claimed it (build it as usual), else the side's
        result once it is there (None too where the side failed on it or ended without it)."""
        if claim(self.folder, spec):
            return None
        path = _result_path(self.folder, spec)
        t0 = time.perf_counter()
        while not path.exists():
            if self.future.done() or time.perf_counter() - t0 > timeout_s:
                if path.exists():
                    break
                return None
            time.sleep(WAIT_POLL_S)
        result = json.loads(path.read_text())
        if result.get("error"):
            log.warning("%s: the side build failed (%s); building it here", spec, result["error"])
            return None
        return result

    def finish(self) -> dict[str, Any]:
        """Wait for the side process to end (it stops at the runner's first claim); what it did, for meta.json."""
        try:
            built = self.future.result(timeout=1800.0)
        except Exception as exc:  # noqa: BLE001 - a failed side process only means the runner built everything
            log.warning("side builds: the side process failed (%s: %s)", type(exc).__name__, exc)
            built = 0
        finally:
            self.executor.shutdown(wait=True, cancel_futures=True)
        results = [json.loads(p.read_text()) for p in sorted(self.folder.glob("*.json"))]
        return {"built": built,
                "specs": {r["spec"]: {"wall_s": round(r.get("wall_s", float("nan")), 2),
                                      "compile_cache": (r.get("one_time") or {}).get("compile_cache", ""),
                                      **({"error": r["error"]} if r.get("error") else {})} for r in results}}


def start(loader: Callable[[str, str], Any], specs: Sequence[str], folder: Path, batch_size: int,
          max_batch_seconds: float, meter_kw: dict[str, Any], threads: int) -> SideBuilds | None:
    """Start the side process over ``specs`` (built from the last); None where it cannot help or cannot start."""
    from concurrent.futures import ProcessPoolExecutor

    from bench.memory import _child_context, loader_preload, picklable

    if len(specs) < 2 or (os.cpu_count() or 1) < 2 or not picklable(loader):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():  # a resumed run starts its claims afresh
        stale.unlink()
    env = dict(os.environ, TORCHINDUCTOR_COMPILE_THREADS="1")
    try:
        ex = ProcessPoolExecutor(max_workers=1, mp_context=_child_context("cpu", loader_preload(loader)))
        fut = ex.submit(_side, loader, list(reversed(specs)), str(folder), batch_size, max_batch_seconds, meter_kw,
                        threads, env)
    except Exception as exc:  # noqa: BLE001 - no side process: the runner builds everything, as before
        log.warning("side builds: not started (%s: %s)", type(exc).__name__, exc)
        return None
    return SideBuilds(folder, fut, ex, time.perf_counter())


def apply(result: dict[str, Any], info: dict[str, Any]) -> tuple[dict[str, Any], float] | None:
    """(the row's info, its load_s) with the side's one-time figures, when the side's build was the cold one and
    the runner's was not; None to keep the runner's own."""
    side = result.get("one_time") or {}
    if side.get("compile_cache") != "cold" or info.get("compile_cache") == "cold":
        return None
    merged = {k: v for k, v in info.items() if k not in ONE_TIME_KEYS}
    merged.update(side)
    return merged, float(result["wall_s"])
