"""Energy meters behind one interface (``bench.energy.base``), one module per meter, chosen by a fallback chain.

``open_meter(["rapl", "codecarbon", "none"], device="cpu")`` tries each in turn; a meter that cannot run here
is skipped with one actionable log line, and the returned meter's ``name`` says which one is in use.
Every module of this package is imported on first use, and each meter in it registers itself
(``@register_meter``): see README.md beside this file.
Standard library only at module level (the CLI imports this before any command runs).
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from bench.energy.base import Measurement, Meter, MeterContext, MeterUnavailable, NullMeter, register_meter

__all__ = ["DEFAULT_CHAINS", "Measurement", "Meter", "MeterContext", "MeterUnavailable", "NullMeter",
           "default_idle_baseline", "make_meter", "measure_idle", "meters", "open_meter", "parse_chain",
           "register_meter"]
log = logging.getLogger(__name__)

# Measured counters first, then estimators; "none" always works.
DEFAULT_CHAINS: dict[str, tuple[str, ...]] = {
    "cpu": ("rapl", "codecarbon", "carbontracker", "none"),
    # nvml+host: the GPU board (NVML) plus the host (RAPL, else CodeCarbon's CPU/RAM estimate), as the paper's
    # CodeCarbon figure covered the host too; NVML alone (board only) when no host meter opens.
    "cuda": ("nvml+host", "nvml", "codecarbon", "none"),
}
# Default idle baseline when the meter reads a hardware counter.  10 s: RAPL's counters update about every
# millisecond (Intel SDM vol. 3B, 14.10) and NVML's total-energy counter (NVML API reference,
# nvmlDeviceGetTotalEnergyConsumption) does not document its update rate, so a window of seconds, not
# milliseconds, is needed to average over its steps and the GPU's drop to its idle power state after the
# warm-up; 10 s stays small against a run of minutes.  Estimators get none: idling a power model returns
# the model's own constants, not an idle draw.
DEFAULT_IDLE_BASELINE_S = 10.0
NO_IDLE_FOR_ESTIMATES = ("no idle baseline: the energy is an estimate (a power model: TDP x load, constant RAM "
                         "watts), so its idle reading is the model's own constant, not a measured idle draw; "
                         "net = gross minus that constant would mean nothing")
NO_IDLE_FOR_REPLAY = ("no idle baseline by default: a replayed trace was recorded elsewhere, not measured during "
                      "this run")
_imported = False
# Served from bench.energy.base on first access, so that importing this package stays standard-library only.
_FROM_BASE = ("Measurement", "Meter", "MeterContext", "MeterUnavailable", "NullMeter", "register_meter")


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from bench.energy import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def meters() -> dict[str, type[Meter]]:
    """Every registered meter by name (this package's modules are imported once so that theirs register)."""
    global _imported
    if not _imported:
        for mod in pkgutil.iter_modules(__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _imported = True
    from bench.energy.base import METERS

    return METERS


def parse_chain(spec: str | Sequence[str] | None, device: str) -> list[str]:
    """``"auto"``/None -> the device's default chain; ``"codecarbon,none"`` -> that order (``none`` appended)."""
    from core.device import Device

    kind = Device.parse(device).kind
    if spec is None or spec == "auto" or spec == ["auto"]:
        return list(DEFAULT_CHAINS.get(kind, DEFAULT_CHAINS["cpu"]))
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    known = meters()
    for item in items:
        if item.split(":", 1)[0] not in known:
            from core.errors import FootprintError

            names = sorted(known, key=lambda n: (n == "none", n))
            raise FootprintError(f"--energy {item}: unknown meter; choose from {', '.join(names)}, "
                                 "replay:TRACE.json or auto")
    if "none" not in items:
        items.append("none")
    return items


def make_meter(name: str, device: str = "cpu", country_iso3: str | None = None,
               carbon_intensity: float | None = None, log_dir: str | None = None) -> Meter:
    """Construct (not open) the meter named by one chain entry (``name`` or ``name:arg``) for ``device``."""
    from bench.energy.base import MeterContext, MeterUnavailable

    base, _, arg = name.partition(":")
    cls = meters().get(base)
    if cls is None:
        raise MeterUnavailable(f"no meter named {base!r} is registered")
    ctx = MeterContext(device=device, arg=arg, country_iso3=country_iso3,
                       carbon_intensity_g_per_kwh=carbon_intensity, log_dir=log_dir)
    return cls.from_context(ctx)


def open_meter(chain: Sequence[str], device: str = "cpu", **kw: Any) -> Meter:
    """The first meter of ``chain`` that opens here; each one skipped is logged once with its reason."""
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


def measure_idle(meter: Meter, seconds: float) -> dict[str, float]:
    """Idle power per measured component (W) over ``seconds`` of sleep with the same meter.

    Estimated components are left out (subtracting a model's constant from itself is not an idle baseline)."""
    meter.begin_window("idle-baseline")
    time.sleep(seconds)
    m = meter.end_window("idle-baseline")
    return {k: w for k, w in m.watts.items() if m.measured_by_component.get(k) or meter.component_counter(k)}


def default_idle_baseline(meter: Meter) -> tuple[float, str]:
    """(seconds, why) of the idle baseline a run takes by default with ``meter``."""
    if meter.name == "none":
        return 0.0, "no idle baseline: no energy meter"
    if meter.name == "replay":
        return 0.0, NO_IDLE_FOR_REPLAY
    if meter.has_counter:
        return DEFAULT_IDLE_BASELINE_S, (f"idle baseline {DEFAULT_IDLE_BASELINE_S:g} s (default with a hardware "
                                         "counter): long enough to average the counters' update steps and the "
                                         "GPU's drop to its idle power state, short against the run")
    return 0.0, NO_IDLE_FOR_ESTIMATES
