"""CodeCarbon's OfflineEmissionsTracker, one task per window (an estimate unless RAPL/NVML are behind it).

Never the online ``EmissionsTracker``: it probes geolocation services and a cloud metadata address.  The
offline tracker with an explicit country makes no network call (tests/test_energy.py checks that).
Without RAPL, CodeCarbon estimates CPU power as a per-thread TDP constant times this process's CPU load
(``tracking_mode="process"``; "machine" would count other processes' load too) and RAM as a constant.
With RAPL behind it, CPU energy is a machine-wide measurement while RAM stays CodeCarbon's constant
(CodeCarbon docs, "Methodology": RAM power is estimated from the memory size): each component is labelled on
its own, the total is "measured" only when all are, and the RAPL component is counted once per host.
"""
from __future__ import annotations

import logging

from bench.energy.base import J_PER_KWH, Meter, MeterContext, MeterUnavailable, register_meter
from core import console

log = logging.getLogger(__name__)


@register_meter
class CodeCarbonMeter(Meter):
    name = "codecarbon"
    RAPL_MODES = ("intel_rapl", "intel_power_gadget", "apple_powermetrics")

    def __init__(self, country_iso3: str = "USA", carbon_intensity_g_per_kwh: float | None = None,
                 measure_power_secs: float = 5.0, tracking_mode: str = "process",
                 gpu_ids: list[int] | None = None, host_only: bool = False) -> None:
        super().__init__()
        self.host_only = host_only  # the host part of nvml+host: NVML counts the board, so drop CodeCarbon's GPU
        self.country = country_iso3
        self.intensity = carbon_intensity_g_per_kwh
        self.measure_power_secs = measure_power_secs
        self.tracking_mode = tracking_mode
        self.gpu_ids = gpu_ids
        self._tracker = None
        self._cpu = None
        self._last: dict[str, float] = {}
        self.version = ""

    @classmethod
    def from_context(cls, ctx: MeterContext) -> "CodeCarbonMeter":
        return cls(country_iso3=ctx.country_iso3 or "USA", carbon_intensity_g_per_kwh=ctx.carbon_intensity_g_per_kwh,
                   gpu_ids=[ctx.index] if ctx.kind == "cuda" else None)

    def open(self) -> None:
        try:
            import codecarbon
            from codecarbon import OfflineEmissionsTracker
        except ImportError:
            raise MeterUnavailable("codecarbon is not installed (pip install codecarbon)") from None
        self.version = codecarbon.__version__
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        kw = dict(country_iso_code=self.country, save_to_file=False, save_to_api=False, project_name="w2v-footprint",
                  tracking_mode=self.tracking_mode, measure_power_secs=self.measure_power_secs, log_level="error",
                  allow_multiple_runs=True)
        if self.intensity is not None:
            kw["force_carbon_intensity_g_co2e_kwh"] = self.intensity
        if self.gpu_ids is not None:
            kw["gpu_ids"] = self.gpu_ids
        try:
            self._tracker = OfflineEmissionsTracker(**kw)
            console.route_codecarbon()  # the tracker gave codecarbon's logger a stderr handler again
            self._tracker.start()
        except Exception as exc:  # noqa: BLE001 - any failure here means: fall back to the next backend
            raise MeterUnavailable(f"codecarbon {self.version} OfflineEmissionsTracker failed to start: "
                                   f"{type(exc).__name__}: {exc}") from None
        # The tracker logs its estimation model at start; we read the constants back for the detail string.
        self._cpu = next((h for h in self._tracker._hardware if type(h).__name__ == "CPU"), None)

    def close(self) -> None:
        if self._tracker is not None:
            try:
                self._tracker.stop()
            except Exception as exc:  # noqa: BLE001
                log.debug("codecarbon stop: %s", exc)
            self._tracker = None

    @property
    def cpu_measured(self) -> bool:
        # CodeCarbon reads RAPL (intel_power_gadget / powercap) when it can: then CPU energy is a measurement.
        return getattr(self._cpu, "_mode", "") in self.RAPL_MODES

    @property
    def measured(self) -> bool:  # type: ignore[override]
        return False  # RAM is always CodeCarbon's constant, so the total is never wholly measured

    @property
    def has_counter(self) -> bool:
        return self.cpu_measured

    @property
    def scope(self) -> str:  # type: ignore[override]
        # RAPL reads the whole package: several ranks on one host must count it once.
        return "machine" if self.cpu_measured else "process"

    def component_measured(self, component: str) -> bool:
        if component == "cpu":
            return self.cpu_measured
        return component == "gpu"  # CodeCarbon reads GPUs through NVML; RAM is a constant

    def component_scope(self, component: str) -> str:
        if component == "cpu":
            return self.scope
        return "device" if component == "gpu" else "process"

    def _begin(self, name: str) -> None:
        self._tracker.start_task(name)

    def _end(self, name: str, seconds: float) -> dict[str, float]:
        data = self._tracker.stop_task()  # the active task (codecarbon suffixes task names with a uuid)
        self._last = {"cpu_w": float(data.cpu_power or 0.0), "ram_w": float(data.ram_power or 0.0),
                      "gpu_w": float(data.gpu_power or 0.0)}
        out = {"cpu": float(data.cpu_energy or 0.0) * J_PER_KWH, "ram": float(data.ram_energy or 0.0) * J_PER_KWH}
        if data.gpu_energy and not self.host_only:
            out["gpu"] = float(data.gpu_energy) * J_PER_KWH
        return out

    def describe(self) -> str:
        cpu = self._cpu
        mode = getattr(cpu, "_mode", "?")
        tdp = getattr(cpu, "_tdp", None)
        ncpu = getattr(cpu, "_cpu_count", None)
        model = getattr(cpu, "_model", "?")
        if mode == "cpu_load":
            per_thread = (tdp / ncpu) if tdp and ncpu else float("nan")
            cpu_txt = (f"CPU ({model}): TDP-based estimate {tdp} W ({per_thread:g} W/thread x {ncpu} threads) "
                       f"x {self.tracking_mode} CPU load")
        elif mode in ("intel_rapl", "intel_power_gadget"):
            cpu_txt = f"CPU ({model}): measured by RAPL via codecarbon (whole machine, all processes)"
        else:
            cpu_txt = f"CPU ({model}): mode {mode}, TDP {tdp} W"
        ram = self._last.get("ram_w")
        ram_txt = (f"RAM {ram:g} W constant (estimated)" if ram is not None
                   else "RAM constant (estimated, codecarbon default)")
        return (f"codecarbon {self.version} OfflineEmissionsTracker ({self.tracking_mode} mode, "
                f"measure_power_secs={self.measure_power_secs:g}, PUE 1.0): {cpu_txt}; {ram_txt}")
