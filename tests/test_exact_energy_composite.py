"""bench.energy.composite (nvml+host): how the board and the host combine, with fake parts whose joules are set here."""
from __future__ import annotations

from typing import Optional

import pytest

from bench.energy import composite
from bench.energy.base import Measurement, MeterContext, MeterUnavailable
from bench.energy.composite import BoardPlusHostMeter


class Part:
    """A stand-in meter: fixed joules per window, records what was called."""

    def __init__(self, name: str, joules: dict[str, float], seconds: float, measured: bool = True,
                 by: Optional[dict[str, bool]] = None, scope_by: Optional[dict[str, str]] = None,
                 scope: str = "machine", fails: Optional[str] = None, counter: Optional[bool] = None) -> None:
        self.name, self.joules, self.seconds, self.measured = name, joules, seconds, measured
        self.by, self.scope_by, self.scope, self.fails = by or {}, scope_by or {}, scope, fails
        self.has_counter = measured if counter is None else counter
        self.calls: list[str] = []

    def open(self) -> None:
        self.calls.append("open")
        if self.fails:
            raise MeterUnavailable(self.fails)

    def close(self) -> None:
        self.calls.append("close")

    def describe(self) -> str:
        return f"{self.name} detail"

    def begin_window(self, name: str) -> None:
        self.calls.append(f"begin {name}")

    def end_window(self, name: str) -> Measurement:
        self.calls.append(f"end {name}")
        return Measurement(self.seconds, dict(self.joules), self.name, self.measured, "", dict(self.by),
                           dict(self.scope_by))


def meter(*host: Part, board: Optional[Part] = None) -> BoardPlusHostMeter:
    board = board or Part("nvml", {"gpu0": 100.0}, 2.0, scope="device", scope_by={"gpu0": "device"})
    return BoardPlusHostMeter(board, list(host))


def test_first_host_that_opens_is_used_and_joules_add_up(caplog: pytest.LogCaptureFixture) -> None:
    rapl = Part("rapl", {"package-0": 30.0, "dram": 5.0}, 2.5)
    cc = Part("codecarbon", {"cpu": 1.0}, 1.0, measured=False)
    m = meter(rapl, cc)
    with caplog.at_level("INFO", logger="bench.energy.composite"):
        m.open()
    assert "energy: GPU board by nvml, host by rapl" in caplog.text
    assert m.host is rapl and cc.calls == [] and m.method == "nvml+rapl"
    m.begin_window("w")
    got = m.end_window("w")
    assert got.joules_by_component == {"gpu0": 100.0, "package-0": 30.0, "dram": 5.0}
    assert got.joules == pytest.approx(135.0)
    assert got.seconds == 2.5                      # the longest part
    assert got.method == "nvml+rapl" and got.measured is True
    assert got.measured_by_component == {"gpu0": True, "package-0": True, "dram": True}
    assert got.scope_by_component == {"gpu0": "device", "package-0": "machine", "dram": "machine"}
    assert got.detail == "board: nvml detail; host: rapl detail"
    assert rapl.calls == ["open", "begin w", "end w"] and m.board.calls == ["open", "begin w", "end w"]
    m.close()
    assert rapl.calls[-1] == "close" and m.board.calls[-1] == "close"


def test_estimated_host_makes_the_row_estimated() -> None:
    rapl = Part("rapl", {}, 1.0, fails="no powercap")
    cc = Part("codecarbon", {"cpu": 10.0, "ram": 2.0}, 3.0, measured=False, by={"ram": False}, scope="process")
    m = meter(rapl, cc)
    m.open()
    assert m.host is cc and m.host_reasons == ["rapl: no powercap"]
    assert m.measured is False and m.has_counter is True
    assert m.describe() == "board: nvml detail; host (skipped: rapl: no powercap): codecarbon detail"
    m.begin_window("x")
    got = m.end_window("x")
    assert got.seconds == 3.0 and got.measured is False
    # "cpu" has no per-component flag: the part's own measured (False); "ram" its flag
    assert got.measured_by_component == {"gpu0": True, "cpu": False, "ram": False}
    assert got.scope_by_component == {"gpu0": "device", "cpu": "process", "ram": "process"}


def test_colliding_component_names_are_prefixed() -> None:
    host = Part("rapl", {"gpu0": 7.0, "cpu": 3.0}, 1.0, by={"gpu0": False}, scope_by={"gpu0": "process"})
    m = meter(host)
    m.open()
    m.begin_window("w")
    got = m.end_window("w")
    assert got.joules_by_component == {"gpu0": 100.0, "rapl:gpu0": 7.0, "cpu": 3.0}
    assert got.measured_by_component == {"gpu0": True, "rapl:gpu0": False, "cpu": True}
    assert got.scope_by_component == {"gpu0": "device", "rapl:gpu0": "process", "cpu": "machine"}
    assert got.measured is False


def test_no_host_closes_the_board_and_says_why() -> None:
    m = meter(Part("rapl", {}, 1.0, fails="no powercap"), Part("codecarbon", {}, 1.0, fails="not installed"))
    with pytest.raises(MeterUnavailable) as exc:
        m.open()
    assert str(exc.value) == ("no host meter for the CPU/RAM beside the GPU board "
                              "(rapl: no powercap | codecarbon: not installed)")
    assert m.board.calls == ["open", "close"] and m.host is None
    assert m.parts == [m.board] and m.method == "nvml"
    assert m.describe() == ("board: nvml detail; host (skipped: rapl: no powercap | codecarbon: not installed): "
                            "none")
    m.close()                                                   # no host: only the board closes
    assert m.board.calls == ["open", "close", "close"]


def test_flags_over_the_parts() -> None:
    board = Part("nvml", {"gpu0": 1.0}, 1.0, counter=True)
    host = Part("codecarbon", {"cpu": 1.0}, 1.0, measured=False, counter=False)
    m = meter(host, board=board)
    assert m.parts == [board] and m.measured is True and m.has_counter is True   # before open: the board alone
    m.open()
    assert m.parts == [board, host] and m.measured is False and m.has_counter is True
    board.has_counter = False
    assert m.has_counter is False
    host.has_counter = True
    assert m.has_counter is True
    assert m.describe() == "board: nvml detail; host: codecarbon detail"


def test_empty_window_is_not_measured() -> None:
    m = meter(Part("rapl", {}, 0.5), board=Part("nvml", {}, 0.25))
    m.open()
    m.begin_window("w")
    got = m.end_window("w")
    assert got.joules_by_component == {} and got.measured is False and got.seconds == 0.5


def test_from_context_builds_rapl_then_host_only_codecarbon(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.energy.codecarbon import CodeCarbonMeter
    from bench.energy.nvml import NvmlMeter
    from bench.energy.rapl import RaplMeter

    board = Part("nvml", {}, 1.0)
    seen: list = []
    monkeypatch.setattr(NvmlMeter, "from_context", classmethod(lambda cls, ctx: seen.append(ctx) or board))
    ctx = MeterContext(device="cuda", carbon_intensity_g_per_kwh=123.0)
    m = BoardPlusHostMeter.from_context(ctx)
    assert m.board is board and seen == [ctx] and [type(h) for h in m.host_chain] == [RaplMeter, CodeCarbonMeter]
    cc = m.host_chain[1]
    assert (cc.country, cc.intensity, cc.host_only) == ("USA", 123.0, True)
    m = BoardPlusHostMeter.from_context(MeterContext(device="cuda", country_iso3="FRA"))
    assert (m.host_chain[1].country, m.host_chain[1].intensity) == ("FRA", None)
    assert composite.HOST_CHAIN == ("rapl", "codecarbon")
    assert BoardPlusHostMeter.name == "nvml+host" and BoardPlusHostMeter.scope == "device"
