"""What making a variant costs, metered: every command that makes one (teacher training, ``distill``,
``prune-structured``, ``quantize`` with its calibration, ``prune``, ``maxpool``, ``apply`` with compilation or
export) runs inside the suite's energy meters and appends a :class:`core.making.Phase` to the output folder's record.

The meters are the benchmark's (``bench.energy``: the same fallback chain, measured where a counter exists, else
estimated, each component labelled), opened here in the command layer because ``compress`` may not import
``bench``.  A record is self-contained: a model continued from, or built on, another suite-made variant (a folder
with ``variant.json``) carries that variant's phases first; a root model (the teacher, an imported model: no
``variant.json``) is not carried, so a student's cost is its distillation, not the teacher's training as well.
A run that is interrupted records its phase in the output folder (if there is one) and a resumed run adds its own.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)


def add_energy_options(p: argparse.ArgumentParser) -> None:
    """The options of every command that makes a variant: how its making cost is metered."""
    g = p.add_argument_group("making cost (recorded in the output's variant.json / making.json)")
    g.add_argument("--energy", default="auto",
                   help="energy meter fallback chain, as bench run's (default: auto = rapl, codecarbon, ... on CPU)")
    g.add_argument("--country", default=None, help="ISO 3166 country code for the carbon intensity")
    g.add_argument("--carbon-intensity", type=float, default=None, help="g CO2e/kWh (overrides --country)")


def resolve_device(device: str | None) -> str:
    """``auto`` -> where the command will run (cuda when torch sees a GPU, else cpu)."""
    if device and device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def inherited(source: str | Path | None) -> Any:
    """The phases a new variant carries from its source: a suite-made variant's record (a folder with
    ``variant.json``); none from a root model (the teacher, an imported model) or a recipe name."""
    from core.making import VARIANT_FILE, read_making

    if not source:
        return None
    p = Path(str(source)).expanduser()
    if not (p.is_dir() and (p / VARIANT_FILE).exists()):
        return None
    return read_making(p)


@dataclass
class MakingRun:
    """What the command tells the meter while it runs."""

    skip: bool = False                       # nothing was made (an already finished run): record no phase
    carry: Any = None                        # the source's record, when known only once the body ran (apply)
    notes: list[str] = field(default_factory=list)


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _phase(phase: str, device: str, m: Any, meter: Any, intensity: Any, wall_s: float, cpu_s: float,
           started: str, notes: list[str], args: argparse.Namespace) -> Any:
    from core.device import Device
    from core.making import Phase

    has = bool(m is not None and m.joules_by_component)
    kwh = m.joules / 3.6e6 if has else None
    detail = m.detail if m is not None else meter.describe()
    fallbacks = getattr(meter, "fallback_reasons", [])
    if has:
        parts = ", ".join(f"{k} {'measured' if m.measured_by_component.get(k) else 'estimated'}"
                          for k in m.joules_by_component)
        detail = f"{detail}; components: {parts}"
    if fallbacks:
        detail += "; skipped: " + " | ".join(fallbacks)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        detail += f"; rank 0's process only of {os.environ['WORLD_SIZE']} ranks"
    if notes:
        detail += "; " + "; ".join(notes)
    return Phase(phase=phase, wall_s=round(wall_s, 3), device=device, device_name=Device.parse(device).name(),
                 started=started, cpu_s=round(cpu_s, 3), energy_kwh=kwh,
                 co2_kg=kwh * intensity.g_per_kwh / 1000.0 if kwh is not None else None,
                 energy_method=m.method if m is not None else meter.name,
                 energy_measured=bool(has and m.measured), energy_source_detail=detail,
                 carbon_intensity_g_per_kwh=intensity.g_per_kwh, carbon_intensity_source=intensity.source,
                 command=command_line(args))


def command_line(args: argparse.Namespace) -> str:
    """The command as parsed (group, command, every option that is set), so that it can be rerun."""
    d = {k: v for k, v in vars(args).items() if not callable(v)}
    words = ["footprint"] + [str(d.pop(k)) for k in ("group", "compress_cmd", "model_cmd") if d.get(k)]
    for k, v in d.items():
        if v is None or v is False or k in ("verbose",):
            continue
        words.append(f"--{k.replace('_', '-')}")
        if v is not True:
            words.append(shlex.quote(str(v)))
    return " ".join(words)


@contextlib.contextmanager
def metered(out: str | Path, phase: str, device: str, args: argparse.Namespace, carry: Any = None,
            resumable: bool = False, resume_dir: str | Path | None = None) -> Iterator[MakingRun]:
    """Run the body inside the energy meters, then write ``carry``'s phases and this phase into ``out``'s record.

    ``resumable`` (training): a record already in ``out`` is this model's own (a resumed or extended run) and is
    kept, this phase appended; otherwise ``out`` is written afresh.  ``resume_dir``: where an interrupted run
    keeps its phase when ``out`` (the model folder) exists only at the end (teacher training: RUN/model)."""
    from bench import energy
    from bench.energy.carbon import resolve_intensity
    from core.making import Making, read_making, write_making
    from core.provenance import now_iso
    from core.train_log import energy_probe

    run = MakingRun()
    if int(os.environ.get("RANK", "0")) != 0:  # one record per model: rank 0 writes it
        yield run
        return
    out = Path(out)
    keep = Path(resume_dir) if resume_dir else out
    # read before the command runs: it may write variant.json afresh
    prior = ((read_making(out) or (read_making(keep) if keep != out else None)) if resumable else None) or carry
    intensity = resolve_intensity(getattr(args, "carbon_intensity", None), getattr(args, "country", None))
    device = resolve_device(device)
    meter = energy.open_meter(energy.parse_chain(getattr(args, "energy", "auto"), device), device,
                              country_iso3=intensity.country_iso3, carbon_intensity=intensity.g_per_kwh)
    started, t0, c0 = now_iso(), time.perf_counter(), _cpu_s()
    ok, m = False, None
    read: list[Any] = [None]  # the windows read so far, summed: a training log's row closes one and opens the next

    def read_window() -> Any:
        m = meter.end_window("making")
        read[0] = m if read[0] is None else read[0].plus(m)
        return read[0]

    def so_far() -> tuple[float | None, float | None]:
        total = read_window()
        meter.begin_window("making")
        if not total.joules_by_component:
            return None, None
        return total.kwh, total.kwh * intensity.g_per_kwh / 1000.0

    meter.begin_window("making")
    try:
        with energy_probe(so_far):
            yield run
        ok = True
    finally:
        try:
            m = read_window()
        finally:
            meter.close()
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        where = out if ok else keep
        if not ok and not resumable:
            pass  # a failed one-shot command made nothing; its --out may hold an older, unrelated variant
        elif not run.skip and where.is_dir():
            name = phase if ok else f"{phase} (interrupted)"
            ph = _phase(name, device, m, meter, intensity, wall, cpu, started, run.notes, args)
            base = prior or run.carry or Making(())
            write_making(where, base.with_phase(ph))
            stale = keep / "making.json"
            if ok and keep != out and stale.exists():
                stale.unlink()  # its phases are in the model folder's record now
            log.info("making: %s %.1f s, %s", name, wall, ph.energy_source_detail.split(";")[0])
            if ok:  # the model card carries the record's CO2: refreshed whenever the record changes
                from compress.card import write_card

                log.info("model card: %s", write_card(where))
        elif not run.skip:
            log.warning("making: %s ran %.1f s but %s does not exist: no record written", phase, wall, where)
