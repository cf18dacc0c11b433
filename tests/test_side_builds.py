"""Builds beside the runner (bench/side_builds.py): each spec is built from a cold cache once, by whichever process
claimed it; the runner waits for the side's result and its rows keep the cold build's one-time figures."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from bench import side_builds
from bench.runner import RunConfig, run_benchmark
from compress.variants import load_variant
from core.results import load_results, read_meta
from helpers import save_tiny_model, shared_tiny_corpus

pytestmark = pytest.mark.slow  # started first under pytest-xdist (tests/conftest.py)


class CompilingLoader:
    """load_variant that behaves like a compiled recipe: the first build of a spec anywhere (a marker file in a
    shared folder, as the persistent compile cache) is "cold" and slow, later ones "warm"; each build is logged
    with the process that made it."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)

    def __call__(self, spec: str, device: str):  # noqa: ANN204
        v = load_variant(spec, device)
        marker = Path(self.folder) / (Path(spec).name + ".built")
        cold = not marker.exists()
        if cold:
            time.sleep(0.5)
            marker.write_text("")
        v.info.update(compile_cache="cold" if cold else "warm", compile_s=0.5 if cold else 0.01)
        with open(Path(self.folder) / "builds.log", "a") as f:
            f.write(f"{os.getpid()} {Path(spec).name} {'cold' if cold else 'warm'}\n")
        return v

    def builds(self) -> list[tuple[int, str, str]]:
        lines = (Path(self.folder) / "builds.log").read_text().split("\n")
        return [(int(p), s, c) for p, s, c in (line.split() for line in lines if line)]


def test_each_spec_is_built_cold_once_and_the_rows_keep_that_build(tmp_path_factory, tmp_path) -> None:  # noqa: ANN001
    root = tmp_path_factory.mktemp("side")
    a, b = save_tiny_model(root / "tiny-a", layers=2), save_tiny_model(root / "tiny-b", layers=1, seed=1)
    (tmp_path / "cache").mkdir()
    loader = CompilingLoader(tmp_path / "cache")
    cfg = RunConfig(out=str(tmp_path / "run"), models=[str(a), str(b)], data=str(shared_tiny_corpus(tmp_path_factory)),
                    repeats=1, warmup=1, energy="none", carbon_intensity=400.0, overhead_pairs=0,
                    scenarios=["batched"], variant_memory="off", side_builds=[str(a), str(b)])
    run_benchmark(cfg, loader, progress=False)
    builds = loader.builds()
    runner = os.getpid()
    cold = {spec: pid for pid, spec, c in builds if c == "cold"}
    assert sorted(cold) == ["tiny-a", "tiny-b"]  # each built from a cold cache exactly once
    assert cold["tiny-a"] == runner and cold["tiny-b"] != runner  # the side took the last spec, the runner the first
    assert (runner, "tiny-b", "warm") in builds  # the runner then built the side's spec from the warm cache
    df = load_results(tmp_path / "run").set_index("variant")
    assert (df["compile_cache"] == "cold").all()  # both rows say what a first build cost
    side = read_meta(tmp_path / "run")["side_builds"]
    assert list(side["specs"]) == [str(b)] and side["specs"][str(b)]["compile_cache"] == "cold"
    assert df.loc["tiny-b", "load_s"] == pytest.approx(side["specs"][str(b)]["wall_s"], abs=0.01)
    assert df.loc["tiny-b", "load_s"] >= 0.5 and df.loc["tiny-b", "compile_s"] == 0.5
    assert not (tmp_path / "run" / ".side-builds").exists()


def test_claims_are_exclusive_and_the_runner_waits_for_the_sides_result(tmp_path: Path) -> None:
    future: Future = Future()
    side = side_builds.SideBuilds(tmp_path, future, executor=None, started=time.perf_counter())
    assert side_builds.claim(tmp_path, "b") and not side_builds.claim(tmp_path, "b")
    assert side.take("a") is None  # nobody had claimed it: the runner builds it
    writer = threading.Timer(0.3, side_builds._write_result, (tmp_path, "b", {"spec": "b", "wall_s": 2.0}))
    writer.start()
    t0 = time.perf_counter()
    assert side.take("b") == {"spec": "b", "wall_s": 2.0}
    assert time.perf_counter() - t0 >= 0.25  # it waited for the result
    side_builds.claim(tmp_path, "c")
    future.set_result(1)  # the side ended without building "c": the runner builds it itself
    assert side.take("c") is None
    side_builds.claim(tmp_path, "d")
    side_builds._write_result(tmp_path, "d", {"spec": "d", "error": "RuntimeError: no compiler"})
    assert side.take("d") is None


def test_only_a_cold_side_build_replaces_the_runners_figures() -> None:
    info = {"params": 10, "compile_cache": "warm", "compile_s": 0.1, "export_s": 0.2}
    cold = {"wall_s": 30.0, "one_time": {"compile_cache": "cold", "compile_s": 28.0}}
    merged, load_s = side_builds.apply(cold, info)
    assert merged == {"params": 10, "compile_cache": "cold", "compile_s": 28.0} and load_s == 30.0
    assert side_builds.apply({"wall_s": 1.0, "one_time": {"compile_cache": "warm"}}, info) is None
    assert side_builds.apply(cold, {**info, "compile_cache": "cold"}) is None  # the runner's own was cold


def test_a_side_build_is_the_variants_making(tmp_path: Path) -> None:
    """A recipe built on the teacher: its making is the side's cold build, metered by the side's own meter."""
    import dataclasses
    from types import SimpleNamespace

    from bench.energy.base import Measurement
    from bench.energy.carbon import resolve_intensity
    from bench.making import side_build_making

    m = Measurement(30.0, {"cpu": 360.0, "ram": 36.0}, "codecarbon", False, "process", {"cpu": False, "ram": False})
    v = SimpleNamespace(path=None, record={"source_model": str(tmp_path)})  # the teacher: no making of its own here
    mk = side_build_making(v, "x+compile-encoder", "cpu", {"wall_s": 30.0, "measurement": dataclasses.asdict(m)},
                           resolve_intensity(400.0, None))
    assert mk.wall_s == 30.0 and mk.energy_kwh == pytest.approx(396.0 / 3.6e6)
    assert mk.co2_kg == pytest.approx(396.0 / 3.6e6 * 0.4)
