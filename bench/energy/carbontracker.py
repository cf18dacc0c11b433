"""carbontracker (offline): one "epoch" per window, sampled power x time, times its PUE.

Without RAPL its CPU model is half of a TDP looked up from the CPU brand (or the average of its table) for
the whole CPU package, whatever share this process uses; it multiplies every figure by PUE 1.58 (Uptime
Institute 2023).  Both are recorded in the detail string.  Its one geolocation lookup (``geocoder.ip``, for
a carbon intensity we do not use: ours is an input) is suppressed, so nothing goes to the network.
"""
from __future__ import annotations

import logging
import tempfile
from types import SimpleNamespace
from unittest import mock

from bench.energy.base import Meter, MeterContext, MeterUnavailable, register_meter

log = logging.getLogger(__name__)


@register_meter
class CarbonTrackerMeter(Meter):
    name = "carbontracker"
    scope = "machine"  # TDP of the whole package, not this process's share

    def __init__(self, components: str = "cpu", update_interval: float = 1.0, log_dir: str | None = None) -> None:
        super().__init__()
        self.components = components
        self.update_interval = update_interval
        self.log_dir = log_dir
        self._ct = None
        self.pue = float("nan")
        self.version = ""
        self._sample_note = ""

    @classmethod
    def from_context(cls, ctx: MeterContext) -> "CarbonTrackerMeter":
        return cls(components="all" if ctx.kind == "cuda" else "cpu", log_dir=ctx.log_dir)

    def open(self) -> None:
        try:
            from importlib.metadata import version

            from carbontracker import constants
            from carbontracker.tracker import CarbonTracker
        except ImportError:
            raise MeterUnavailable("carbontracker is not installed (pip install carbontracker)") from None
        self.version = version("carbontracker")
        self.pue = float(constants.PUE_2023)
        log_dir = self.log_dir or tempfile.mkdtemp(prefix="carbontracker-")
        offline = SimpleNamespace(ok=False, address="Unknown", country="Unknown")
        try:
            with mock.patch("carbontracker.emissions.intensity.intensity.geocoder.ip", return_value=offline):
                self._ct = CarbonTracker(epochs=10**9, epochs_before_pred=0, monitor_epochs=10**9,
                                         update_interval=self.update_interval, components=self.components,
                                         log_dir=log_dir, verbose=0, ignore_errors=False)
        except BaseException as exc:  # noqa: BLE001 - carbontracker may sys.exit on errors
            raise MeterUnavailable(f"carbontracker {self.version} failed to start: "
                                   f"{type(exc).__name__}: {exc}") from None
        if getattr(self._ct, "deleted", False) or not getattr(self._ct, "tracker", None):
            raise MeterUnavailable(f"carbontracker {self.version}: no component available for '{self.components}'")

    def close(self) -> None:
        if self._ct is not None:
            try:
                self._ct.tracker.stop()
                self._ct.intensity_stopper.set()
            except Exception as exc:  # noqa: BLE001
                log.debug("carbontracker stop: %s", exc)
            self._ct = None

    def _components(self):  # noqa: ANN202
        return list(self._ct.tracker.components)

    def _begin(self, name: str) -> None:
        self._ct.tracker.epoch_start()

    def _end(self, name: str, seconds: float) -> dict[str, float]:
        import numpy as np

        self._ct.tracker.measuring_event.clear()
        out: dict[str, float] = {}
        notes = []
        for comp in self._components():
            # Power samples of this window; a window shorter than one sampling interval has none: then the
            # latest earlier sample stands in (carbontracker itself would count 0 J).
            samples = next((p for p in reversed(comp.power_usages) if p), None)
            if not samples:  # nothing sampled yet at all: ask the component once, synchronously
                try:
                    samples = list(comp.handler.power_usage())
                except Exception as exc:  # noqa: BLE001 - carbontracker raises its own error types
                    log.debug("carbontracker %s: %s", comp.name, exc)
                    samples = None
            if not samples:
                notes.append(f"{comp.name}: no power sample yet")
                continue
            # Samples of several devices are appended flat, one per device per round: mean x devices = total.
            n_dev = max(1, len(comp.devices()))
            watts = float(np.mean(np.asarray(samples, dtype=float))) * n_dev
            out[comp.name] = watts * seconds
        total = sum(out.values())
        if out:
            out["pue_overhead"] = total * (self.pue - 1.0)
        self._sample_note = "; ".join(notes)
        return out

    def describe(self) -> str:
        parts = []
        for comp in self._components() if self._ct else []:
            h = comp.handler
            tdp = getattr(h, "tdp", None)
            brand = getattr(h, "cpu_brand", "") or getattr(h, "name", "")
            if tdp is not None:
                parts.append(f"{comp.name.upper()} ({brand}): {type(h).__name__} estimate {tdp:.1f} W "
                             f"(50 % of a {2 * tdp:g} W TDP guessed from the CPU brand, whole package)")
            else:
                parts.append(f"{comp.name.upper()}: {type(h).__name__}")
        note = f"; {self._sample_note}" if self._sample_note else ""
        return (f"carbontracker {self.version} (offline, geolocation suppressed): {'; '.join(parts)}; "
                f"x PUE {self.pue:g} (pue_overhead component){note}")
