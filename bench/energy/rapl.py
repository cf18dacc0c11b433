"""RAPL package/DRAM energy counters from the Linux powercap interface (a measurement, machine-wide)."""
from __future__ import annotations

import os
from pathlib import Path

from bench.energy.base import CounterMeter, MeterUnavailable, register_meter

DEFAULT_ROOT = "/sys/class/powercap"


@register_meter
class RaplMeter(CounterMeter):
    """``intel-rapl:N`` packages (and their ``dram`` sub-zones) read from ``energy_uj``, wrapping at
    ``max_energy_range_uj``.  Core/uncore sub-zones are skipped: the package already contains them."""

    name = "rapl"
    scope = "machine"

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.root = Path(root or os.environ.get("FOOTPRINT_RAPL_ROOT", DEFAULT_ROOT))
        self.zones: dict[str, Path] = {}

    def open(self) -> None:
        if not self.root.is_dir():
            raise MeterUnavailable(f"{self.root} does not exist (no RAPL in this VM/container; "
                                   "on bare metal load the intel_rapl_common module)")
        zones: dict[str, Path] = {}
        for zone in sorted(self.root.glob("intel-rapl:*")):
            parts = zone.name.split(":")
            try:
                label = (zone / "name").read_text().strip()
            except OSError:
                label = zone.name
            if len(parts) == 2 or label.startswith("dram"):
                key = label if label not in zones else f"{label}-{zone.name}"
                zones[key] = zone
        if not zones:
            raise MeterUnavailable(f"{self.root}: no intel-rapl:* zones")
        for key, zone in zones.items():
            try:
                (zone / "energy_uj").read_text()
            except PermissionError:
                raise MeterUnavailable(f"{zone / 'energy_uj'}: not readable (root only since Linux 5.10; "
                                       "run as root or chmod o+r it)") from None
            except OSError as exc:
                raise MeterUnavailable(f"{zone / 'energy_uj'}: {exc.strerror or exc}") from None
            try:
                self.wrap_j[key] = int((zone / "max_energy_range_uj").read_text()) / 1e6
            except (OSError, ValueError):
                pass
        self.zones = zones

    def read(self) -> dict[str, float]:
        return {k: int((z / "energy_uj").read_text()) / 1e6 for k, z in self.zones.items()}

    def describe(self) -> str:
        return (f"RAPL counters {', '.join(self.zones) or '(none)'} from {self.root} (energy_uj, wraparound at "
                "max_energy_range_uj); whole machine, all processes")
