"""Each row's making cost: what it cost to make the variant it times (``making_*`` columns, ``core.making``).

The value is the model folder's recorded making (a student's or a saved variant's ``variant.json``, the teacher's
``making.json``) plus, for a recipe built when the runner loads it (quantisation, calibration, compilation, export),
that build, metered by the run's own energy meter around the loader call.  A recipe built on a suite-made variant
(a trained student: a folder with ``variant.json``) starts from that variant's record; one built on a root model
(the teacher, an imported model) starts from nothing: every variant descends from the teacher, whose training is
its own row's making cost, not counted again in each variant's.  A folder without a record is "not recorded": NaN,
never zero.  Random-weight (``arch-``) variants are "not recorded": nothing was trained.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from core.errors import FootprintError
from core.making import NOT_RECORDED, VARIANT_FILE, Making, Phase, read_making

log = logging.getLogger(__name__)

BUILD_PHASE = "build at load"  # the phase name of a recipe built by the runner, ": <recipe>" after it


def _plain(loader: Any) -> Any:
    return loader


class MeteredLoader:
    """The runner's loader, each call inside an energy window of the meter of the device it loads on; what the
    variant cost to make is kept on the run (``run.making[(spec, device)]``) for its rows.

    Pickles as the plain loader (a child process measuring memory loads it without meters)."""

    def __init__(self, loader: Any, run: Any) -> None:
        self.loader, self.run = loader, run
        if not hasattr(run, "making"):
            run.making = {}

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return _plain, (self.loader,)

    def _meter(self, device: str) -> Any:
        for dev, m in getattr(self.run, "meters", {}).items():
            if dev == device or self.run.local_device(dev) == device:
                return m
        return None

    def __call__(self, spec: str, device: str) -> Any:
        import time

        meter, label = self._meter(device), f"making|{spec}|{device}"
        m = None
        t0 = time.perf_counter()
        if meter is not None:
            meter.begin_window(label)
        try:
            v = self.loader(spec, device)
        finally:
            if meter is not None:
                m = meter.end_window(label)
        wall = time.perf_counter() - t0
        # the first load of a spec on a device is the one a deployer pays; a later one (a resumed run) replaces it
        try:
            self.run.making[(spec, device)] = variant_making(v, spec, device, m, wall, self.run.intensity)
        except FootprintError as e:  # a broken record must not stop the variant from being timed
            log.warning("%s: making cost not read (%s)", spec, e)
            self.run.making[(spec, device)] = None
        return v


def metered_loader(run: Any) -> MeteredLoader:
    return MeteredLoader(run.loader, run)


def variant_making(v: Any, spec: str, device: str, m: Any, wall_s: float, intensity: Any) -> Making | None:
    """The variant's making: its folder's record, or its source's (a suite-made variant) and the build just
    metered; None when unknown."""
    path = getattr(v, "path", None)
    if path:
        return read_making(path)
    record = getattr(v, "record", None) or {}
    source = record.get("source_model")
    if not source:
        return None  # random weights (arch-), or a loader that says nothing of where the model came from
    src = Path(str(source)).expanduser()
    base = Making(())
    if src.is_dir() and (src / VARIANT_FILE).exists():
        base = read_making(src)
        if base is None:
            return None  # built on a variant whose own making is unknown
    return base.with_phase(build_phase(spec, device, m, wall_s, intensity))


def side_build_making(v: Any, spec: str, device: str, result: dict[str, Any], intensity: Any) -> Making | None:
    """The variant's making when the side process built it from a cold cache (bench/side_builds.py): that build,
    metered by the side's own meter, in place of the runner's warm rebuild."""
    from bench.energy.base import Measurement

    m = Measurement(**result["measurement"]) if result.get("measurement") else None
    return variant_making(v, spec, device, m, float(result["wall_s"]), intensity)


def build_phase(spec: str, device: str, m: Any, wall_s: float, intensity: Any) -> Phase:
    """The runner's build of a recipe at load time, as a phase (energy from the run's meter window, if any)."""
    from core.device import Device
    from core.provenance import now_iso

    has = m is not None and bool(m.joules_by_component)
    kwh = m.joules / 3.6e6 if has else None
    return Phase(phase=f"{BUILD_PHASE}: {spec}", wall_s=round(wall_s, 3), device=device,
                 device_name=Device.parse(device).name(), started=now_iso(), energy_kwh=kwh,
                 co2_kg=kwh * intensity.g_per_kwh / 1000.0 if kwh is not None else None,
                 energy_method=m.method if m is not None else "none", energy_measured=bool(has and m.measured),
                 energy_source_detail=(m.detail if m is not None else "no meter") + "; the runner's loader call",
                 carbon_intensity_g_per_kwh=intensity.g_per_kwh, carbon_intensity_source=intensity.source,
                 command=f"bench run: load {spec}")


def making_fields(run: Any, spec: str, device: str) -> dict[str, Any]:
    """The row's ``making_*`` columns (``core.schema.Row``): NaN and "not recorded" when unknown."""
    mk = getattr(run, "making", {}).get((spec, device))
    if mk is None or not mk.phases:
        return {"making_wall_s": math.nan, "making_energy_kwh": math.nan, "making_co2_kg": math.nan,
                "making_label": NOT_RECORDED, "making_measured": None}
    return {"making_wall_s": mk.wall_s, "making_energy_kwh": mk.energy_kwh, "making_co2_kg": mk.co2_kg,
            "making_label": mk.label, "making_measured": mk.measured}
