"""Energy meters behind one interface (``bench.energy.base``), one module per backend, chosen by a fallback chain.

``open_meter(["rapl", "codecarbon", "none"], device="cpu")`` tries each in turn; a backend that cannot run here
is skipped with one actionable log line, and the returned meter's ``name`` says which one is in use.
Standard library only at module level (the CLI imports this before any command runs).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Sequence

log = logging.getLogger(__name__)

# name -> "module:class"; a new meter is one module plus one line here.
BACKENDS: dict[str, str] = {
    "rapl": "bench.energy.rapl:RaplMeter",
    "nvml": "bench.energy.nvml:NvmlMeter",
    "codecarbon": "bench.energy.codecarbon:CodeCarbonMeter",
    "carbontracker": "bench.energy.carbontracker:CarbonTrackerMeter",
    "replay": "bench.energy.replay:ReplayMeter",
    "none": "bench.energy.base:NullMeter",
}
# Measured counters first, then estimators; "none" always works.
DEFAULT_CHAINS: dict[str, tuple[str, ...]] = {
    "cpu": ("rapl", "codecarbon", "carbontracker", "none"),
    "cuda": ("nvml", "codecarbon", "none"),
}


def parse_chain(spec: str | Sequence[str] | None, device: str) -> list[str]:
    """``"auto"``/None -> the device's default chain; ``"codecarbon,none"`` -> that order (``none`` appended)."""
    kind = device.split(":")[0]
    if spec is None or spec == "auto" or spec == ["auto"]:
        return list(DEFAULT_CHAINS.get(kind, DEFAULT_CHAINS["cpu"]))
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    from core.errors import FootprintError

    for item in items:
        if item.split(":", 1)[0] not in BACKENDS:
            raise FootprintError(f"--energy {item}: unknown meter; choose from {', '.join(BACKENDS)}, "
                                 "replay:TRACE.json or auto")
    if "none" not in items:
        items.append("none")
    return items


def make_meter(name: str, device: str = "cpu", country_iso3: str | None = None,
               carbon_intensity: float | None = None, log_dir: str | None = None) -> Any:
    """Construct (not open) one backend for ``device``."""
    import importlib

    base, _, arg = name.partition(":")
    module, cls = BACKENDS[base].split(":")
    klass = getattr(importlib.import_module(module), cls)
    kind, _, idx = device.partition(":")
    index = int(idx) if idx else 0
    if base == "nvml":
        if kind != "cuda":
            from bench.energy.base import NullMeter  # noqa: F401 - checked by the caller's fallback

            raise _unavailable(f"NVML measures GPUs; device {device} is not one")
        return klass(cuda_index=index)
    if base == "codecarbon":
        return klass(country_iso3=country_iso3 or "USA", carbon_intensity_g_per_kwh=carbon_intensity,
                     gpu_ids=[index] if kind == "cuda" else None)
    if base == "carbontracker":
        return klass(components="all" if kind == "cuda" else "cpu", log_dir=log_dir)
    if base == "replay":
        if not arg:
            raise _unavailable("replay needs a trace: --energy replay:TRACE.json")
        return klass(arg)
    return klass()


def _unavailable(msg: str) -> Exception:
    from bench.energy.base import MeterUnavailable

    return MeterUnavailable(msg)


def open_meter(chain: Sequence[str], device: str = "cpu", **kw: Any) -> Any:
    """The first backend of ``chain`` that opens here; each one skipped is logged once with its reason."""
    from bench.energy.base import MeterUnavailable, NullMeter

    reasons = []
    for name in chain:
        try:
            meter = make_meter(name, device, **kw)
            meter.open()
        except MeterUnavailable as exc:
            reasons.append(f"{name}: {exc}")
            log.warning("energy meter %s unavailable on %s: %s; trying the next", name, device, exc)
            continue
        if name != chain[0]:
            log.info("energy on %s: using %s (fallback; %s)", device, name, " | ".join(reasons))
        meter.fallback_reasons = reasons
        return meter
    meter = NullMeter("no energy meter could run: " + " | ".join(reasons))
    meter.fallback_reasons = reasons
    return meter


def measure_idle(meter: Any, seconds: float) -> dict[str, float]:
    """Idle power per component (W), measured over ``seconds`` of sleep with the same meter."""
    meter.begin_window("idle-baseline")
    time.sleep(seconds)
    m = meter.end_window("idle-baseline")
    return m.watts
