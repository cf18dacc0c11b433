"""A GPU's board (NVML) and its host (RAPL, else CodeCarbon's CPU/RAM estimate) as the components of one meter.

NVML's total-energy counter covers the board only (NVML API reference, nvmlDeviceGetTotalEnergyConsumption);
the paper's CodeCarbon figure (Table 1, about 254 W x run time) covered the host's CPU and RAM too.  This meter
measures both, each part a fallback chain of its own, and labels every component measured or estimated, so a
row is "measured" only when the host was read from RAPL as well.
"""
from __future__ import annotations

import logging

from bench.energy.base import Measurement, Meter, MeterContext, MeterUnavailable, register_meter

log = logging.getLogger(__name__)

HOST_CHAIN = ("rapl", "codecarbon")


@register_meter
class BoardPlusHostMeter(Meter):
    name = "nvml+host"
    scope = "device"  # of the board; host components carry their own (RAPL: machine) in scope_by_component

    def __init__(self, board: Meter, host_chain: list[Meter]) -> None:
        super().__init__()
        self.board = board
        self.host_chain = host_chain
        self.host: Meter | None = None
        self.host_reasons: list[str] = []
        self._owner: dict[str, Meter] = {}

    @classmethod
    def from_context(cls, ctx: MeterContext) -> "BoardPlusHostMeter":
        from bench.energy.codecarbon import CodeCarbonMeter
        from bench.energy.nvml import NvmlMeter
        from bench.energy.rapl import RaplMeter

        board = NvmlMeter.from_context(ctx)  # raises MeterUnavailable off a GPU
        cc = CodeCarbonMeter(country_iso3=ctx.country_iso3 or "USA",
                             carbon_intensity_g_per_kwh=ctx.carbon_intensity_g_per_kwh, host_only=True)
        return cls(board, [RaplMeter(), cc])

    def open(self) -> None:
        self.board.open()
        for m in self.host_chain:
            try:
                m.open()
            except MeterUnavailable as exc:
                self.host_reasons.append(f"{m.name}: {exc}")
                continue
            self.host = m
            break
        if self.host is None:
            self.board.close()
            raise MeterUnavailable("no host meter for the CPU/RAM beside the GPU board ("
                                   + " | ".join(self.host_reasons) + ")")
        log.info("energy: GPU board by %s, host by %s", self.board.name, self.host.name)

    def close(self) -> None:
        self.board.close()
        if self.host is not None:
            self.host.close()

    @property
    def parts(self) -> list[Meter]:
        return [self.board] + ([self.host] if self.host is not None else [])

    @property
    def method(self) -> str:
        return "+".join(m.name for m in self.parts)

    @property
    def measured(self) -> bool:  # type: ignore[override]
        return all(m.measured for m in self.parts)

    @property
    def has_counter(self) -> bool:
        return any(m.has_counter for m in self.parts)

    def describe(self) -> str:
        host = self.host.describe() if self.host is not None else "none"
        skipped = f" (skipped: {' | '.join(self.host_reasons)})" if self.host_reasons else ""
        return f"board: {self.board.describe()}; host{skipped}: {host}"

    def begin_window(self, name: str) -> None:
        for m in self.parts:
            m.begin_window(name)

    def end_window(self, name: str) -> Measurement:
        got = [m.end_window(name) for m in self.parts]
        joules: dict[str, float] = {}
        by: dict[str, bool] = {}
        scope: dict[str, str] = {}
        for part, m in zip(self.parts, got):
            for k, v in m.joules_by_component.items():
                key = k if k not in joules else f"{part.name}:{k}"  # never let two parts' names collide
                joules[key] = v
                by[key] = m.measured_by_component.get(k, m.measured)
                scope[key] = m.scope_by_component.get(k, part.scope)
        seconds = max(m.seconds for m in got)
        return Measurement(seconds, joules, self.method, bool(by) and all(by.values()), self.describe(), by, scope)

    # Windows are delegated whole to the parts (above); these are never reached.
    def _begin(self, name: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def _end(self, name: str, seconds: float) -> dict[str, float]:  # pragma: no cover
        raise NotImplementedError
