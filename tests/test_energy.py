"""Energy meters: Measurement arithmetic, counter wraparound, replay traces, RAPL on a fake sysfs, the fallback
chain with its reasons, a meter registered from outside bench/energy, carbon intensity sources, and no network
from codecarbon/carbontracker."""
from __future__ import annotations

import json
import logging
import math
import socket

import pytest

from bench import energy
from bench.energy import measure_idle, open_meter, parse_chain
from bench.energy.base import (Measurement, Meter, MeterContext, MeterUnavailable, NullMeter, counter_delta,
                               register_meter)
from bench.energy.carbon import resolve_intensity
from bench.energy.rapl import RaplMeter
from bench.energy.replay import ReplayMeter
from core.errors import FootprintError


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_measurement_arithmetic() -> None:
    m = Measurement(10.0, {"cpu": 3.6e6, "ram": 1.8e6}, "x", True, "d")
    assert m.joules == pytest.approx(5.4e6)
    assert m.kwh == pytest.approx(1.5)
    assert m.watts == {"cpu": pytest.approx(3.6e5), "ram": pytest.approx(1.8e5)}
    net = m.minus_baseline({"cpu": 1e5, "ram": 1e6})
    assert net.joules_by_component == {"cpu": pytest.approx(2.6e6), "ram": 0.0}  # clipped at zero
    assert "idle baseline" in net.detail
    assert math.isnan(Measurement(1.0).joules)


def test_counter_delta_wraps_once() -> None:
    assert counter_delta(10.0, 25.0, None) == 15.0
    assert counter_delta(250.0, 10.0, 262.0) == pytest.approx(22.0)
    assert counter_delta(250.0, 10.0, None) == 0.0


def _trace(path, wrap=None):  # noqa: ANN001, ANN202
    # 100 W on "package-0" (wrapping at 1000 J if asked), 10 W on "dram"
    samples = []
    for t in range(0, 31):
        pkg = 100.0 * t
        samples.append([float(t), {"package-0": pkg % wrap if wrap else pkg, "dram": 10.0 * t}])
    data = {"method": "rapl", "measured": True, "detail": "recorded on test-host", "samples": samples}
    if wrap:
        data["wrap_j"] = {"package-0": wrap}
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("wrap", [None, 1000.0])
def test_replay_windows_and_wraparound(tmp_path, wrap) -> None:  # noqa: ANN001
    clock = FakeClock()
    meter = ReplayMeter(_trace(tmp_path / "trace.json", wrap), clock=clock)
    meter.open()
    clock.t = 2.5
    meter.begin_window("outer")
    clock.t = 4.0
    meter.begin_window("inner")  # windows nest by name
    clock.t = 17.25  # crosses the 1000 J wrap at t = 10
    inner = meter.end_window("inner")
    clock.t = 20.0
    outer = meter.end_window("outer")
    assert inner.joules_by_component["package-0"] == pytest.approx(100 * 13.25)
    assert inner.joules_by_component["dram"] == pytest.approx(10 * 13.25)
    assert outer.joules_by_component["package-0"] == pytest.approx(100 * 17.5)
    # a trace recorded as "measured" is still a replay, not a measurement of this run
    assert inner.method == "replay" and inner.measured is False and "test-host" in inner.detail
    assert inner.measured_by_component == {"package-0": False, "dram": False}
    assert "replay (not measured in this run)" in inner.detail and "rapl" in inner.detail
    clock.t = 40.0  # past the end: held at the last sample
    assert meter.read()["dram"] == pytest.approx(300.0)
    with pytest.raises(ValueError):
        meter.end_window("never-opened")


def test_window_context_manager(tmp_path) -> None:  # noqa: ANN001
    clock = FakeClock()
    with ReplayMeter(_trace(tmp_path / "t.json"), clock=clock) as meter:
        with meter.window("w") as w:
            clock.t = 3.0
    assert w.measurement.joules == pytest.approx(330.0)


def _fake_rapl(root, energy_uj, max_uj=1_000_000):  # noqa: ANN001, ANN202
    for zone, name, e in (("intel-rapl:0", "package-0", energy_uj), ("intel-rapl:0:0", "core", 5),
                          ("intel-rapl:0:1", "dram", 7)):
        d = root / zone
        d.mkdir(parents=True, exist_ok=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text(f"{e}\n")
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")


def test_rapl_fake_sysfs_with_wraparound(tmp_path) -> None:  # noqa: ANN001
    _fake_rapl(tmp_path, 900_000)
    meter = RaplMeter(root=tmp_path)
    meter.open()
    assert set(meter.zones) == {"package-0", "dram"}  # core is inside the package: not counted twice
    meter.begin_window("w")
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("100000\n")  # wrapped past 1 J
    (tmp_path / "intel-rapl:0:1" / "energy_uj").write_text("500007\n")
    m = meter.end_window("w")
    assert m.joules_by_component["package-0"] == pytest.approx(0.2)
    assert m.joules_by_component["dram"] == pytest.approx(0.5)
    assert m.measured and m.method == "rapl" and "energy_uj" in m.detail


def test_fallback_chain_logs_reason_and_uses_next(tmp_path, monkeypatch, caplog) -> None:  # noqa: ANN001
    monkeypatch.setenv("FOOTPRINT_RAPL_ROOT", str(tmp_path / "no-powercap"))
    trace = _trace(tmp_path / "trace.json")
    with caplog.at_level(logging.WARNING, logger="bench.energy"):
        meter = open_meter(["rapl", "nvml", f"replay:{trace}", "none"], "cpu")
    assert meter.name == "replay"
    lines = [r.getMessage() for r in caplog.records]
    assert any("rapl unavailable" in m and "no-powercap" in m for m in lines)
    assert any("nvml unavailable" in m and "not one" in m for m in lines)
    assert len(meter.fallback_reasons) == 2
    meter.close()
    none = open_meter(["rapl"], "cpu")  # nothing works: NullMeter says why
    assert isinstance(none, NullMeter) and "rapl" in none.describe()
    assert none.end_window.__self__ is none


def test_parse_chain() -> None:
    assert parse_chain("auto", "cpu")[0] == "rapl" and parse_chain(None, "cuda")[:2] == ["nvml+host", "nvml"]
    assert parse_chain("codecarbon", "cpu") == ["codecarbon", "none"]
    with pytest.raises(FootprintError, match="unknown meter"):
        parse_chain("wattmeter", "cpu")


@pytest.fixture
def registry(monkeypatch):  # noqa: ANN001, ANN201
    """The meter registry, restored after the test (a meter registered here must not leak into other tests)."""
    monkeypatch.setattr(energy.base, "METERS", dict(energy.meters()))
    return energy.base.METERS


def test_a_meter_from_another_module_is_selected_by_name(registry) -> None:  # noqa: ANN001
    seen: list[MeterContext] = []

    @register_meter
    class SocketMeter(Meter):
        """A 42 W wall-socket meter reachable only when the chain entry names its port."""

        name = "socketmeter"
        measured = True

        def __init__(self, port: str) -> None:
            super().__init__()
            self.port = port

        @classmethod
        def from_context(cls, ctx: MeterContext) -> "SocketMeter":
            seen.append(ctx)
            if not ctx.arg:
                raise MeterUnavailable("needs a port: socketmeter:PORT")
            return cls(ctx.arg)

        def describe(self) -> str:
            return f"wall socket on {self.port}"

        def _begin(self, name: str) -> None:
            pass

        def _end(self, name: str, seconds: float) -> dict[str, float]:
            return {"wall": 42.0 * seconds}

    assert "socketmeter" in registry
    chain = parse_chain("socketmeter,socketmeter:ttyUSB0", "cuda:1")
    assert chain == ["socketmeter", "socketmeter:ttyUSB0", "none"]
    meter = open_meter(chain, "cuda:1", country_iso3="FRA", carbon_intensity=56.0, log_dir="/tmp/x")
    assert isinstance(meter, SocketMeter) and meter.port == "ttyUSB0"
    assert meter.fallback_reasons == ["socketmeter: needs a port: socketmeter:PORT"]
    assert seen[-1] == MeterContext("cuda:1", "ttyUSB0", "FRA", 56.0, "/tmp/x")
    assert (seen[-1].kind, seen[-1].index) == ("cuda", 1)
    with meter.window("w") as w:
        pass
    assert w.measurement.method == "socketmeter" and w.measurement.measured and "ttyUSB0" in w.measurement.detail
    with pytest.raises(ValueError, match="already registered"):
        register_meter(type("Impostor", (NullMeter,), {"name": "socketmeter"}))


def test_idle_baseline_from_replay(tmp_path) -> None:  # noqa: ANN001
    meter = ReplayMeter(_trace(tmp_path / "t.json"))  # real clock: 110 W in all
    meter.open()
    watts = measure_idle(meter, 0.2)
    assert watts["package-0"] == pytest.approx(100.0, rel=0.05) and watts["dram"] == pytest.approx(10.0, rel=0.05)


def test_carbon_intensity_sources() -> None:
    user = resolve_intensity(123.0)
    assert user.g_per_kwh == 123.0 and "user input" in user.source
    fr3, fr2 = resolve_intensity(country="FRA"), resolve_intensity(country="fr")
    assert fr3.g_per_kwh == fr2.g_per_kwh and fr3.country_iso3 == "FRA" and "France" in fr3.source
    world = resolve_intensity()
    assert world.g_per_kwh == 475.0 and "world average" in world.source
    with pytest.raises(FootprintError, match="--country XXX"):
        resolve_intensity(country="XXX")


@pytest.fixture
def no_network(monkeypatch):  # noqa: ANN001, ANN201
    """Every connection attempt or DNS lookup is recorded and refused."""
    attempts: list = []

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        attempts.append(args[1:3] if len(args) > 2 else args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_codecarbon_offline_makes_no_network_call(no_network) -> None:  # noqa: ANN001
    meter = open_meter(["codecarbon"], "cpu", country_iso3="FRA", carbon_intensity=56.0)
    assert meter.name == "codecarbon", getattr(meter, "fallback_reasons", None)
    with meter.window("w") as w:
        sum(range(200_000))
    meter.close()
    m = w.measurement
    assert set(m.joules_by_component) >= {"cpu", "ram"} and m.joules > 0
    assert m.measured is False and "codecarbon" in m.detail and "RAM" in m.detail and "W" in m.detail
    assert no_network == []
    # the CPU label follows what CodeCarbon itself says it does (its CPU's repr names the mode): a RAPL reading
    # is measured, anything else (its TDP x load model, a constant) is not, and the detail says which
    from codecarbon.external.hardware import CPU

    assert isinstance(meter._cpu, CPU), "CodeCarbonMeter no longer finds CodeCarbon's CPU object"
    rapl = repr(meter._cpu) in ("CPU(Intel Rapl)", "CPU(Intel Power Gadget)")
    assert m.measured_by_component["cpu"] is rapl
    assert ("measured by RAPL" in m.detail) is rapl and ("TDP-based estimate" in m.detail) is (
        repr(meter._cpu) == "CPU(Cpu Load)")


@pytest.mark.parametrize("mode, measured, words", [
    ("intel_rapl", True, "measured by RAPL via codecarbon (whole machine, all processes)"),
    ("cpu_load", False, "TDP-based estimate 100 W (50 W/thread x 2 threads) x process CPU load"),
    ("constant", False, "mode constant, TDP 100 W")])
def test_codecarbon_cpu_labels_on_the_installed_version(tmp_path, mode, measured, words) -> None:  # noqa: ANN001
    """CodeCarbonMeter reads CodeCarbon's CPU object's private fields (``_mode``, ``_tdp``...): built here by
    CodeCarbon's own constructor, each mode must keep its label, so an upgrade that renames them cannot turn a
    RAPL measurement into an estimate (or the reverse) unnoticed."""
    from codecarbon.external.hardware import CPU

    from bench.energy.codecarbon import CodeCarbonMeter

    _fake_rapl(tmp_path / "rapl", 900_000)  # CodeCarbon's RAPL mode opens the zones when built
    cpu = CPU(str(tmp_path), mode, "Fake Xeon", 100, rapl_dir=str(tmp_path / "rapl"), tracking_mode="process")
    cpu._cpu_count = 2  # set by CodeCarbon's tracker from the machine; fixed here for the per-thread figure
    meter = CodeCarbonMeter()
    meter._cpu, meter.version = cpu, "installed"
    assert meter.cpu_measured is measured and meter.has_counter is measured
    assert meter.component_measured("cpu") is measured and meter.component_measured("ram") is False
    assert meter.scope == ("machine" if measured else "process")
    assert f"CPU (Fake Xeon): {words}" in meter.describe()


def test_carbontracker_offline_no_network_records_pue(no_network, tmp_path) -> None:  # noqa: ANN001
    meter = open_meter(["carbontracker"], "cpu", log_dir=str(tmp_path))
    assert meter.name == "carbontracker", getattr(meter, "fallback_reasons", None)
    with meter.window("w") as w:
        sum(range(200_000))
    meter.close()
    m = w.measurement
    assert "PUE 1.58" in m.detail and "TDP" in m.detail and m.measured is False
    assert m.joules_by_component["pue_overhead"] == pytest.approx(0.58 * m.joules_by_component["cpu"])
    assert no_network == []


def _fake_pynvml(supported: bool = True):  # noqa: ANN202
    import types

    mod = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    state = {"mj": 1_000_000}
    mod.NVMLError = NVMLError
    mod.nvmlInit = lambda: None
    mod.nvmlShutdown = lambda: None
    mod.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"

    def by_uuid(uuid):  # noqa: ANN001, ANN202
        raise NVMLError("not found")

    def energy(handle):  # noqa: ANN001, ANN202
        if not supported:
            raise NVMLError("Not Supported")
        state["mj"] += 2500  # 2.5 J per read
        return state["mj"]

    mod.nvmlDeviceGetHandleByUUID = by_uuid
    mod.nvmlDeviceGetTotalEnergyConsumption = energy
    mod.nvmlDeviceGetName = lambda h: b"Fake H100"
    return mod


def test_nvml_counter_with_a_fake_driver(monkeypatch) -> None:  # noqa: ANN001
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml())
    meter = open_meter(["nvml", "none"], "cuda:0")
    assert meter.name == "nvml"
    with meter.window("w") as w:
        pass
    meter.close()
    m = w.measurement
    assert m.joules_by_component == {"gpu0": pytest.approx(2.5)} and m.measured
    assert "Fake H100" in m.detail and "host CPU and RAM not included" in m.detail


def test_nvml_pre_volta_falls_back_with_reason(monkeypatch, caplog) -> None:  # noqa: ANN001
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(supported=False))
    with caplog.at_level(logging.WARNING, logger="bench.energy"):
        meter = open_meter(["nvml", "none"], "cuda:0")
    assert meter.name == "none" and "Volta" in caplog.text


def test_a_window_then_the_next_add_up_per_component() -> None:
    from bench.energy.base import Measurement

    a = Measurement(2.0, {"cpu": 10.0, "ram": 1.0}, "rapl", False, "first", {"cpu": True, "ram": False},
                    {"cpu": "machine", "ram": "process"})
    b = Measurement(3.0, {"cpu": 5.0, "gpu0": 7.0}, "rapl", True, "second", {"cpu": False, "gpu0": True},
                    {"cpu": "machine", "gpu0": "device"})
    ab = a.plus(b)
    assert ab.seconds == 5.0 and ab.joules_by_component == {"cpu": 15.0, "ram": 1.0, "gpu0": 7.0}
    assert ab.measured_by_component == {"cpu": False, "ram": False, "gpu0": True} and not ab.measured
    assert ab.detail == "second" and ab.scope_by_component["gpu0"] == "device"
    assert Measurement(1.0, {"cpu": 1.0}, measured=True).plus(Measurement(1.0, {"cpu": 2.0}, measured=True)).measured
