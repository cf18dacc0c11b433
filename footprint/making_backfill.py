"""Making records recomputed from training logs, for models made before their commands were metered.

Energy is "estimated from logged time": each phase's logged wall time x a stated power.  The CPU figure is the
one the suite's estimating meter (CodeCarbon, ``bench/energy/codecarbon.py``) uses on the project's CPU VM; the GPU
figure, for which the suite has no estimating meter (its GPU meters read NVML), is the board's TDP.  The
assumptions go into each phase's ``energy_source_detail``.  Rerunnable: ``footprint model making --backfill DIR``
replaces the estimated phases and keeps any metered phase recorded after them.

Layouts read:
  * a teacher training folder: ``train_log.csv`` with a ``phase`` column; ``wall_s`` is cumulative within a phase,
    so a phase's wall time is its last row's.  Phases named ``h100...`` ran on one NVIDIA H100, the others on the
    project's 2-core CPU VM (docs/runs/2026-11-teacher-training/README.md).
  * a student folder (``variant.json`` with ``"training"``): ``train_log.csv`` per run, earlier runs of a continued
    student kept as ``train_log.first-run.csv``, ``.second-run``, ... (each run's last ``wall_s``), and
    ``train_config[.<n>-run].json`` for its CPU threads (docs/runs/2026-11-students-training/README.md).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import FootprintError
from core.making import ESTIMATED_FROM_LOG, VARIANT_FILE, Making, Phase, read_making, write_making

# CodeCarbon 3.3.2's estimate on the project's 2-core CPU VM, as the suite's codecarbon meter recorded it there
# (meta.json of docs/runs/2026-11-30e-issue16-cpu: "TDP-based estimate 8 W (4 W/thread x 2 threads) x process CPU
# load; RAM 10 W constant"): 4 W per thread is codecarbon.core.cpu.DEFAULT_POWER_PER_CORE, its figure for a CPU
# model missing from its TDP table; the RAM constant is its estimate for that VM's memory.
try:
    from codecarbon.core.cpu import DEFAULT_POWER_PER_CORE as CC_W_PER_THREAD
except ImportError:  # the figure of CodeCarbon 3.3.2, for a machine without it
    CC_W_PER_THREAD = 4.0
CC_RAM_W = 10.0
VM_THREADS = 2  # the project's CPU VM; a run with threads unset used all of them
# NVIDIA H100 SXM5 80GB: maximum thermal design power 700 W (NVIDIA H100 Tensor Core GPU datasheet; the PCIe card
# is 350 W).  A training step keeps the board near it; the TDP is an upper bound on the board's draw.
H100_TDP_W = 700.0
CC_SOURCE = "codecarbon 3.3.2 figures recorded on the project's CPU VM (docs/runs/2026-11-30e-issue16-cpu/meta.json)"
RUN_SUFFIXES = ("first-run", "second-run", "third-run", "fourth-run", "fifth-run", "sixth-run")


@dataclass(frozen=True)
class Power:
    watts: float
    device: str
    device_name: str
    detail: str


def cpu_power(threads: int | None) -> Power:
    """CodeCarbon's process-mode estimate at full load of ``threads`` of the VM's threads, plus its RAM constant."""
    n = min(int(threads or VM_THREADS), VM_THREADS)
    cpu_w = CC_W_PER_THREAD * n
    return Power(cpu_w + CC_RAM_W, "cpu", f"the project's {VM_THREADS}-core CPU VM",
                 f"CPU {cpu_w:g} W ({CC_W_PER_THREAD:g} W/thread x {n} busy thread(s), full load assumed) + RAM "
                 f"{CC_RAM_W:g} W = {cpu_w + CC_RAM_W:g} W: {CC_SOURCE}")


def h100_power() -> Power:
    host = CC_W_PER_THREAD + CC_RAM_W  # one busy host thread feeding the GPU, and the RAM constant
    return Power(H100_TDP_W + host, "cuda", "NVIDIA H100 (SXM5 80GB assumed)",
                 f"GPU board {H100_TDP_W:g} W (H100 SXM5 TDP, NVIDIA datasheet; an upper bound) + host "
                 f"{host:g} W (CPU {CC_W_PER_THREAD:g} W for one busy thread + RAM {CC_RAM_W:g} W, as {CC_SOURCE}) "
                 f"= {H100_TDP_W + host:g} W")


def _phase(name: str, wall_s: float, power: Power, source: str, intensity: Any, note: str = "",
           command: str = "") -> Phase:
    kwh = wall_s * power.watts / 3.6e6
    detail = (f"{ESTIMATED_FROM_LOG}: wall time {wall_s:g} s ({source}; pauses within the run counted) x "
              f"{power.watts:g} W; {power.detail}" + (f"; {note}" if note else ""))
    return Phase(phase=name, wall_s=wall_s, device=power.device, device_name=power.device_name,
                 energy_kwh=kwh, co2_kg=kwh * intensity.g_per_kwh / 1000.0, energy_method=ESTIMATED_FROM_LOG,
                 energy_measured=False, energy_source_detail=detail,
                 carbon_intensity_g_per_kwh=intensity.g_per_kwh, carbon_intensity_source=intensity.source,
                 command=command)


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise FootprintError(f"{path}: unreadable ({e})") from None
    if not rows or "wall_s" not in rows[0]:
        raise FootprintError(f"{path}: no wall_s column or no rows: nothing to recompute from")
    return rows


def _last_wall(rows: list[dict[str, str]], where: str) -> float:
    """The wall time of a run whose log's ``wall_s`` is cumulative: its last row's, checked never to go back."""
    try:
        walls = [float(r["wall_s"]) for r in rows]
    except ValueError:
        raise FootprintError(f"{where}: a wall_s that is not a number") from None
    if any(b < a for a, b in zip(walls, walls[1:])):
        raise FootprintError(f"{where}: wall_s goes back: not one run's cumulative time")
    return walls[-1]


def teacher_phases(folder: Path, intensity: Any) -> list[Phase]:
    log = folder / "train_log.csv"
    rows = _rows(log)
    if "phase" not in rows[0]:
        raise FootprintError(f"{log}: no phase column (a teacher's log names each phase)")
    by: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by.setdefault(r["phase"], []).append(r)
    out = []
    for name, rs in by.items():
        wall = _last_wall(rs, f"{log} phase {name}")
        power = h100_power() if name.startswith("h100") else cpu_power(VM_THREADS)
        out.append(_phase(f"teacher:{name}", wall, power, f"{log.name}, last wall_s of phase {name}", intensity,
                          command="see docs/runs/2026-11-teacher-training/README.md"))
    return out


def _runs(folder: Path) -> list[tuple[str, Path, Path, Path]]:
    """(suffix, log, config, record) of each run in the order they ran; the current run last."""
    runs = []
    for sfx in RUN_SUFFIXES:
        log = folder / f"train_log.{sfx}.csv"
        if log.exists():
            runs.append((sfx, log, folder / f"train_config.{sfx}.json", folder / f"variant.{sfx}.json"))
    runs.append(("", folder / "train_log.csv", folder / "train_config.json", folder / VARIANT_FILE))
    return runs


def _json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FootprintError(f"{path}: unreadable ({e})") from None


# A metered record shorter than its log by more than this: part of the run ran in a process that recorded nothing
UNRECORDED_MIN_S = 60.0


def student_phases(folder: Path, intensity: Any) -> list[Phase]:
    """One estimated phase per run of a student, from its log; where the current run's record has metered training
    phases (a run resumed from a checkpoint meters only itself), the part of the log's wall time they do not cover, when
    over :data:`UNRECORDED_MIN_S`: what an earlier process of the same run did before it ended unrecorded."""
    rec = _json(folder / VARIANT_FILE)
    pruned = "structured_pruning" in rec
    trained_by = "prune-structured" if pruned else "distill"  # the metered training command's phase (not a later one)
    metered_s = sum(p.wall_s for p in (read_making(folder) or Making(())).phases
                    if p.energy_method != ESTIMATED_FROM_LOG and p.phase.startswith(trained_by))
    runs = _runs(folder)
    out = []
    for i, (sfx, log, cfg_path, rec_path) in enumerate(runs, 1):
        wall = _last_wall(_rows(log), str(log))
        logged = _json(rec_path).get("training", {}).get("wall_s")
        if logged is not None and abs(float(logged) - wall) > 1.0:
            raise FootprintError(f"{log}: last wall_s {wall:g} s disagrees with {rec_path.name}'s training.wall_s "
                                 f"{logged:g} s")
        threads = _json(cfg_path).get("threads")
        name = "prune-structured: recovery (distillation)" if pruned else "distill"
        if len(runs) > 1:
            name += f", run {i} of {len(runs)}" + (" (continued from run {})".format(i - 1) if i > 1 else "")
        note = ("the pruning step before it (importance over 64 utterances) was not timed: not included"
                if pruned else "the teacher-logit cache, built before the loop and shared by several students, "
                "not included")
        source = f"{log.name}, last wall_s"
        if not sfx and metered_s:  # the current run's metered phases cover part of its log: estimate the rest
            wall -= metered_s
            if wall <= UNRECORDED_MIN_S:
                continue
            source += " minus the metered phases'"
            note = (f"the part of the run that its metered phase(s) ({metered_s:g} s) do not cover: an earlier "
                    f"process, resumed from its checkpoint, ended before it recorded a phase; {note}")
        out.append(_phase(name, wall, cpu_power(threads), source, intensity, note,
                          command="see docs/runs/2026-11-students-training/README.md"))
    return out


def recompute(folder: str | Path, intensity: Any) -> list[Phase]:
    """The estimated phases of a teacher training folder or a student folder, from its logs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FootprintError(f"{folder}: no such model directory")
    if "training" in _json(folder / VARIANT_FILE):
        return student_phases(folder, intensity)
    if (folder / "train_log.csv").exists():
        return teacher_phases(folder, intensity)
    raise FootprintError(f"{folder}: no training log to recompute a making record from (train_log.csv)")


def backfill(folder: str | Path, intensity: Any) -> Making:
    """Replace ``folder``'s estimated phases by those recomputed from its logs; metered phases are kept after them."""
    metered = [p for p in (read_making(folder) or Making(())).phases if p.energy_method != ESTIMATED_FROM_LOG]
    making = Making(tuple(recompute(folder, intensity)) + tuple(metered))
    write_making(folder, making)
    return making
