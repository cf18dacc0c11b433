"""The tracker interface: named measurement windows over a meter, each returning a :class:`Measurement`.

Zeus-style: ``begin_window(name)`` / ``end_window(name)`` over cumulative energy counters (or an estimator),
plus a context manager, :meth:`Meter.window`, as optimum-benchmark's trackers.  Every measurement says how
it was obtained: ``method`` (which backend), ``measured`` (a hardware counter: True; a model of power from
load, TDP or constants: False) and ``detail`` (the counter, or the model and its constants).

Each meter class registers itself under its ``name`` with :func:`register_meter` and is built from one
:class:`MeterContext` by :meth:`Meter.from_context`; ``bench.energy`` looks meters up by that name only.
"""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Iterator, TypeVar

from core.device import Device

log = logging.getLogger(__name__)

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Measurement:
    """Energy over one window.  Joules per component (e.g. ``cpu``, ``ram``, ``gpu0``, ``package-0``)."""

    seconds: float
    joules_by_component: dict[str, float] = field(default_factory=dict)
    method: str = "none"
    measured: bool = False  # True only when every component below is a hardware measurement
    detail: str = ""
    # Per component: a hardware counter (True) or a model of power (False); what the row's label is built from.
    measured_by_component: dict[str, bool] = field(default_factory=dict)
    # Per component: "process", "device" or "machine" (a machine-wide component is counted once per host).
    scope_by_component: dict[str, str] = field(default_factory=dict)

    @property
    def joules(self) -> float:
        return float(sum(self.joules_by_component.values())) if self.joules_by_component else float("nan")

    @property
    def kwh(self) -> float:
        return self.joules / J_PER_KWH

    @property
    def watts(self) -> dict[str, float]:
        """Mean power per component over the window."""
        if self.seconds <= 0:
            return {k: float("nan") for k in self.joules_by_component}
        return {k: v / self.seconds for k, v in self.joules_by_component.items()}

    def plus(self, later: "Measurement") -> "Measurement":
        """This window followed by ``later`` (the same meter): seconds and joules per component added, a component
        measured only if it was in both."""
        joules = dict(self.joules_by_component)
        for k, v in later.joules_by_component.items():
            joules[k] = joules.get(k, 0.0) + v
        by = {k: self.measured_by_component.get(k, True) and later.measured_by_component.get(k, True)
              for k in joules}
        return Measurement(self.seconds + later.seconds, joules, later.method, self.measured and later.measured,
                           later.detail, by, {**self.scope_by_component, **later.scope_by_component})

    def minus_baseline(self, idle_watts: dict[str, float]) -> "Measurement":
        """Subtract idle power x window length per component (clipped at zero: noise must not make energy negative).

        Only components in ``idle_watts`` change: :func:`bench.energy.measure_idle` keeps measured ones only, since
        idling a power model returns the model's own constant (e.g. CodeCarbon's RAM watts), not an idle draw."""
        comps = {k: max(0.0, v - idle_watts.get(k, 0.0) * self.seconds) for k, v in self.joules_by_component.items()}
        total_w = sum(idle_watts.values())
        return replace(self, joules_by_component=comps,
                       detail=f"{self.detail}; idle baseline {total_w:.2f} W subtracted")


class MeterUnavailable(Exception):
    """A backend cannot run here; the message says why and what would make it work (one line)."""


@dataclass(frozen=True)
class MeterContext:
    """Everything a meter may need to be built; each meter reads the fields it uses and ignores the rest."""

    device: str = "cpu"                # "cpu", "cuda", "cuda:1": the device this meter watches
    arg: str = ""                      # the text after "name:" in a chain entry, e.g. TRACE.json in replay:TRACE.json
    country_iso3: str | None = None    # for estimators that need a grid (codecarbon); None: their default
    carbon_intensity_g_per_kwh: float | None = None
    log_dir: str | None = None         # where a backend may write its own logs; None: a temporary directory

    @property
    def kind(self) -> str:
        return Device.parse(self.device).kind

    @property
    def index(self) -> int:
        return Device.parse(self.device).index or 0


class Meter(ABC):
    """One energy backend.  ``open`` may raise :class:`MeterUnavailable`; windows may nest by name."""

    name: str = "meter"
    measured: bool = False
    # What the numbers cover: "process" (this process's share), "device" (one whole GPU), "machine" (all sockets).
    # Ranks on one host sum process/device meters, but only one rank may count a machine-wide meter.
    scope: str = "process"

    def component_measured(self, component: str) -> bool:
        """Is this component a hardware measurement?  Default: the meter's ``measured``; mixed meters override."""
        return bool(self.measured)

    def component_scope(self, component: str) -> str:
        """What this component covers (``process``/``device``/``machine``).  Default: the meter's ``scope``."""
        return self.scope

    def component_counter(self, component: str) -> bool:
        """Does this component come from a counter (now, or recorded: a replay)?  An idle baseline applies to it."""
        return self.component_measured(component)

    @property
    def has_counter(self) -> bool:
        """Does any component read a hardware counter?  Decides whether an idle baseline means anything."""
        return bool(self.measured)

    def __init__(self) -> None:
        self._starts: dict[str, float] = {}
        self.fallback_reasons: list[str] = []  # set by open_meter: why each earlier meter of the chain was skipped

    @classmethod
    def from_context(cls, ctx: MeterContext) -> "Meter":
        """Build (not open) this meter for ``ctx``; raise MeterUnavailable when ``ctx`` rules it out."""
        return cls()

    def open(self) -> None:
        """Acquire the backend (start threads, open counters).  Raise MeterUnavailable with the reason."""

    def close(self) -> None:
        """Release the backend; safe to call twice."""

    @abstractmethod
    def describe(self) -> str:
        """The ``energy_source_detail`` string: the counter, or the estimation model and its constants."""

    def begin_window(self, name: str) -> None:
        if name in self._starts:
            raise ValueError(f"energy window {name!r} already open")
        self._begin(name)
        self._starts[name] = time.perf_counter()

    def end_window(self, name: str) -> Measurement:
        if name not in self._starts:
            raise ValueError(f"energy window {name!r} was never opened")
        seconds = time.perf_counter() - self._starts.pop(name)
        joules = self._end(name, seconds)
        return self._measurement(seconds, joules)

    def _measurement(self, seconds: float, joules: dict[str, float]) -> Measurement:
        by = {k: self.component_measured(k) for k in joules}
        # The row says "measured" only when every component is (no estimated constant inside a measured total).
        measured = bool(by) and all(by.values()) if joules else bool(self.measured)
        return Measurement(seconds, joules, self.name, measured, self.describe(), by,
                           {k: self.component_scope(k) for k in joules})

    @abstractmethod
    def _begin(self, name: str) -> None: ...

    @abstractmethod
    def _end(self, name: str, seconds: float) -> dict[str, float]: ...

    @contextmanager
    def window(self, name: str) -> Iterator["WindowResult"]:
        """``with meter.window("run") as w: ...`` then ``w.measurement``."""
        result = WindowResult()
        self.begin_window(name)
        try:
            yield result
        finally:
            result.measurement = self.end_window(name)

    def __enter__(self) -> "Meter":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class WindowResult:
    measurement: Measurement | None = None


M = TypeVar("M", bound=type[Meter])

# name -> meter class; filled by @register_meter as each meter's module is imported.
METERS: dict[str, type[Meter]] = {}


def register_meter(cls: M) -> M:
    """Class decorator: make ``cls`` selectable as ``cls.name`` in ``--energy`` chains."""
    name = cls.name
    if not name or ":" in name or "," in name:
        raise ValueError(f"meter name {name!r}: need a non-empty name without ':' or ','")
    old = METERS.get(name)
    # A module imported twice (reload) defines a new class of the same name: that is not a clash.
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"energy meter {name!r} is already registered by {old.__module__}.{old.__qualname__}")
    METERS[name] = cls
    return cls


@register_meter
class NullMeter(Meter):
    """No energy figure: rows carry NaN and ``energy_method = none``."""

    name = "none"

    def __init__(self, reason: str = "no energy meter requested") -> None:
        super().__init__()
        self.reason = reason

    def describe(self) -> str:
        return self.reason

    def _begin(self, name: str) -> None:
        pass

    def _end(self, name: str, seconds: float) -> dict[str, float]:
        return {}


class CounterMeter(Meter):
    """A meter over monotonically increasing energy counters (joules), with wraparound.

    Subclasses implement :meth:`read` (cumulative joules per component) and may set ``wrap_j`` (the counter's
    range per component, e.g. RAPL's ``max_energy_range_uj``): a counter that went down wrapped once.
    """

    measured = True

    def __init__(self) -> None:
        super().__init__()
        self.wrap_j: dict[str, float] = {}
        self._begin_counts: dict[str, dict[str, float]] = {}

    @abstractmethod
    def read(self) -> dict[str, float]: ...

    def _begin(self, name: str) -> None:
        self._begin_counts[name] = self.read()

    def _end(self, name: str, seconds: float) -> dict[str, float]:
        start, end = self._begin_counts.pop(name), self.read()
        return {k: counter_delta(start[k], end[k], self.wrap_j.get(k)) for k in start if k in end}


def counter_delta(start: float, end: float, wrap: float | None) -> float:
    """end - start for a cumulative counter that may have wrapped once at ``wrap``."""
    d = end - start
    if d < 0:
        if not wrap:
            log.warning("energy counter went backwards (%.3f -> %.3f J) and has no known range; counted as 0",
                        start, end)
            return 0.0
        d += wrap
    return d
