"""Issue 14 (findings 1, 2, 3, 5): every energy component labelled measured or estimated, CodeCarbon's RAPL
reading machine-wide beside its constant RAM, the GPU board plus its host as one meter, and the idle baseline
taken by default only where a hardware counter is read.  Hardware is faked: no RAPL, GPU or CodeCarbon needed."""
from __future__ import annotations

import json
import logging
import sys
from types import SimpleNamespace

import pytest

from bench import energy
from bench.energy import default_idle_baseline, open_meter, parse_chain
from bench.energy.codecarbon import CodeCarbonMeter
from bench.energy.rapl import RaplMeter
from bench.rows import _energy_fields
from test_energy import _fake_pynvml, _fake_rapl


class FakeTracker:
    """CodeCarbon's OfflineEmissionsTracker as far as CodeCarbonMeter uses it: 1 kJ CPU, 0.36 kJ RAM, 7.2 kJ GPU."""

    def start_task(self, name: str) -> None:
        pass

    def stop_task(self) -> SimpleNamespace:
        return SimpleNamespace(cpu_power=50.0, ram_power=3.0, gpu_power=200.0, cpu_energy=1000 / 3.6e6,
                               ram_energy=360 / 3.6e6, gpu_energy=7200 / 3.6e6)

    def stop(self) -> None:
        pass


def _fake_codecarbon(monkeypatch, mode: str) -> None:  # noqa: ANN001
    def fake_open(self: CodeCarbonMeter) -> None:
        self.version = "fake"
        self._tracker = FakeTracker()
        self._cpu = type("CPU", (), {"_mode": mode, "_model": "Fake Xeon", "_tdp": 100, "_cpu_count": 8})()

    monkeypatch.setattr(CodeCarbonMeter, "open", fake_open)


def test_codecarbon_rapl_mode_labels_cpu_measured_ram_estimated_machine_scope(monkeypatch) -> None:  # noqa: ANN001
    """Finding 2: RAPL CPU + constant RAM is not a 'measured' total, and the RAPL part is machine-wide."""
    _fake_codecarbon(monkeypatch, "intel_rapl")
    meter = CodeCarbonMeter()
    meter.open()
    with meter.window("w") as w:
        pass
    m = w.measurement
    assert m.measured_by_component == {"cpu": True, "ram": False, "gpu": True}
    assert m.measured is False and meter.measured is False and meter.has_counter
    assert meter.scope == "machine" and m.scope_by_component["cpu"] == "machine"
    assert m.scope_by_component["ram"] == "process"
    assert "RAM 3 W constant (estimated)" in m.detail and "whole machine" in m.detail
    # two ranks on one host: the machine-wide RAPL CPU once, each rank's RAM and GPU share each
    parts = [{"gross": m, "net": m, "scope": meter.scope, "local_rank": r} for r in (0, 1)]
    f = _energy_fields(parts, SimpleNamespace(g_per_kwh=400.0, source="test"), 3600.0, None)
    assert f["energy_components_j"] == pytest.approx({"cpu": 1000.0, "ram": 720.0, "gpu": 14400.0})
    assert f["energy_measured"] is False and f["energy_components_measured"] == {"cpu": True, "ram": False,
                                                                                 "gpu": True}
    # without RAPL the CPU is a TDP x load estimate
    _fake_codecarbon(monkeypatch, "cpu_load")
    est = CodeCarbonMeter()
    est.open()
    assert est.scope == "process" and not est.has_counter
    assert default_idle_baseline(est)[0] == 0.0 and "estimate" in default_idle_baseline(est)[1]


def test_cuda_auto_is_board_plus_rapl_host(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """Finding 3: on a GPU the default meter reads the board (NVML) and the host (RAPL) as one row's components."""
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml())
    _fake_rapl(tmp_path, 900_000)
    monkeypatch.setenv("FOOTPRINT_RAPL_ROOT", str(tmp_path))
    meter = open_meter(parse_chain("auto", "cuda:0"), "cuda:0")
    assert meter.name == "nvml+host" and meter.has_counter
    with meter.window("w") as w:
        (tmp_path / "intel-rapl:0" / "energy_uj").write_text("1900000\n")  # +1 J package
    meter.close()
    m = w.measurement
    assert set(m.joules_by_component) == {"gpu0", "package-0", "dram"}
    assert m.joules_by_component["gpu0"] == pytest.approx(2.5)
    assert m.joules_by_component["package-0"] == pytest.approx(1.0)
    assert m.method == "nvml+rapl" and m.measured and all(m.measured_by_component.values())
    assert m.scope_by_component == {"gpu0": "device", "package-0": "machine", "dram": "machine"}
    assert m.detail.startswith("board: NVML") and "host: RAPL" in m.detail
    assert default_idle_baseline(meter)[0] == energy.DEFAULT_IDLE_BASELINE_S


def test_cuda_auto_host_falls_back_to_estimate_then_nvml_alone(monkeypatch, tmp_path, caplog) -> None:  # noqa: ANN001
    """Finding 3: without RAPL the host is CodeCarbon's estimate (labelled, its GPU not counted twice); without
    any host meter, NVML alone with the reason logged."""
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml())
    monkeypatch.setenv("FOOTPRINT_RAPL_ROOT", str(tmp_path / "no-powercap"))
    _fake_codecarbon(monkeypatch, "cpu_load")
    meter = open_meter(parse_chain("auto", "cuda:0"), "cuda:0")
    with meter.window("w") as w:
        pass
    meter.close()
    m = w.measurement
    assert m.method == "nvml+codecarbon" and set(m.joules_by_component) == {"gpu0", "cpu", "ram"}
    assert m.measured_by_component == {"gpu0": True, "cpu": False, "ram": False} and m.measured is False
    assert "rapl:" in m.detail  # why the host is not RAPL

    def no_codecarbon(self: CodeCarbonMeter) -> None:
        raise energy.MeterUnavailable("codecarbon is not installed")

    monkeypatch.setattr(CodeCarbonMeter, "open", no_codecarbon)
    with caplog.at_level(logging.WARNING, logger="bench.energy"):
        alone = open_meter(parse_chain("auto", "cuda:0"), "cuda:0")
    assert alone.name == "nvml" and "no host meter" in caplog.text
    assert "nvml+host" in alone.fallback_reasons[0]


def test_idle_baseline_default_on_for_counters_off_for_estimates(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """Finding 5: a hardware counter gets an idle baseline by default (net beside gross); an estimate none."""
    from bench.runner import RunConfig
    from footprint.cli import build_parser

    assert RunConfig().idle_baseline_s is None
    assert build_parser().parse_args(["bench", "run"]).idle_baseline_s is None
    _fake_rapl(tmp_path, 900_000)
    rapl = RaplMeter(root=tmp_path)
    rapl.open()
    seconds, why = default_idle_baseline(rapl)
    assert seconds == 10.0 and "hardware counter" in why
    # idling a power model gives the model's constant: measure_idle keeps measured components only
    _fake_codecarbon(monkeypatch, "intel_rapl")
    cc = CodeCarbonMeter()
    cc.open()
    assert set(energy.measure_idle(cc, 0.0)) == {"cpu", "gpu"}


def test_runner_takes_the_idle_baseline_by_default_with_a_counter(monkeypatch, tmp_path, tmp_path_factory) -> None:  # noqa: ANN001, E501
    """Finding 5, end to end: RAPL (a fake sysfs) with no --idle-baseline-s: rows carry net beside gross."""
    from core.results import load_results, read_meta
    from bench.runner import RunConfig, run_benchmark
    from compress.variants import load_variant
    from helpers import save_tiny_model, shared_tiny_corpus

    import time

    _fake_rapl(tmp_path / "rapl", 0, max_uj=10**15)
    monkeypatch.setenv("FOOTPRINT_RAPL_ROOT", str(tmp_path / "rapl"))
    monkeypatch.setattr(energy, "DEFAULT_IDLE_BASELINE_S", 0.05)  # the default's logic, not its 10 s
    # counters that advance: the package draws 20 W during the idle baseline and 120 W otherwise, DRAM 2 W
    # throughout; so idle is 22 W, and net = gross - 22 W x window keeps the package's 100 W above idle
    clock = {"t": time.perf_counter(), "idle": False, "pkg": 0.0, "dram": 0.0}

    def read(self) -> dict[str, float]:  # noqa: ANN001
        now = time.perf_counter()
        clock["pkg"] += (20.0 if clock["idle"] else 120.0) * (now - clock["t"])
        clock["dram"] += 2.0 * (now - clock["t"])
        clock["t"] = now
        return {"package-0": clock["pkg"], "dram": clock["dram"]}

    real_idle = energy.measure_idle

    def measure_idle(meter, seconds):  # noqa: ANN001, ANN202
        read(None)  # the time before counts at the working power
        clock["idle"] = True
        try:
            return real_idle(meter, seconds)
        finally:
            clock["idle"] = False

    monkeypatch.setattr(RaplMeter, "read", read)
    monkeypatch.setattr(energy, "measure_idle", measure_idle)
    model = save_tiny_model(tmp_path / "tiny", layers=1)
    corpus = shared_tiny_corpus(tmp_path_factory)
    cfg = RunConfig(out=str(tmp_path / "run"), models=[str(model)], data=str(corpus), repeats=1, warmup=0,
                    limit=2, energy="rapl", carbon_intensity=400.0, overhead_pairs=0)
    run_benchmark(cfg, load_variant, progress=False)
    df = load_results(tmp_path / "run")
    assert (df["idle_baseline_s"] == 0.05).all() and df["energy_j_net"].notna().all()
    assert (df["energy_j"] == df["energy_j_gross"]).all() and df["energy_measured"].all()
    assert df["idle_w"].tolist() == pytest.approx([22.0], rel=0.02)
    assert df["energy_j"].tolist() == pytest.approx((122.0 * df["wall_s"]).tolist(), rel=0.1)
    assert (df["energy_j_net"] / df["energy_j"]).tolist() == pytest.approx([100 / 122], rel=0.02)
    assert json.loads(df["energy_components_j"].iloc[0])["dram"] == pytest.approx(2.0 * df["wall_s"].iloc[0], rel=0.1)
    assert [json.loads(c) for c in df["energy_components_measured"]] == [{"package-0": True, "dram": True}]
    why = read_meta(tmp_path / "run")["energy"]["idle_baseline"]["cpu"]["why"]
    assert "hardware counter" in why


def test_report_says_replay_what_gpu_energy_includes_and_net_beside_gross() -> None:
    """Findings 1, 3, 5 in the report: replay as replay, the GPU total's components, net beside gross, and why an
    estimate gets no idle baseline."""
    from pathlib import Path

    from reports.html import build_report
    from reports.load import load_run

    run = load_run(Path(__file__).resolve().parent / "fixtures" / "results_small")
    df = run.results
    gpu = df["device"].str.startswith("cuda")
    df.loc[~gpu, "energy_method"] = "replay"
    df.loc[~gpu, "energy_measured"] = False
    df.loc[~gpu, "energy_source_detail"] = "replay (not measured in this run) of a recorded rapl trace"
    df["energy_components_measured"] = None
    df.loc[gpu, "energy_method"] = "nvml+codecarbon"
    df.loc[gpu, "energy_measured"] = False  # the host is estimated, so the row is not "measured"
    df.loc[gpu, "energy_components_measured"] = json.dumps({"gpu0": True, "cpu": False, "ram": False})
    df["energy_j_net"] = df["energy_j"] * 0.8
    df["idle_baseline_s"] = 10.0
    html = build_report(run)
    cav = html[html.index('<section id="caveats">'):]
    assert "<b>Replayed energy.</b>" in cav and "not measured during this run" in cav
    assert "gpu0 (measured) + cpu (estimated) + ram (estimated)" in cav
    assert "<b>Idle baseline.</b> Idle power was measured for 10 s" in cav
    assert "<b>No idle baseline for estimated energy.</b>" in cav
    assert "total of gpu0 (measured) + cpu (estimated) + ram (estimated)" in html  # Table 4's method cell
    t1 = html[html.index('id="table1"'):html.index('id="table1b"')] if 'id="table1b"' in html else html
    assert "Ours (GPU): the total of gpu0 (measured) + cpu (estimated) + ram (estimated)" in t1  # Table 1's note
    # NVML alone: the report says the host is left out
    df.loc[gpu, "energy_method"] = "nvml"
    assert "The GPU board only (NVML): the host CPU and RAM are not included" in build_report(run)
