"""The suite's persistent compile cache: Inductor's caches under the suite's cache folder (a user's own folder
kept), and ``compile_cache`` in the variant's info: "cold" when something was compiled, "warm" when all of it came
from the cache (a second build of the same graph, as the runner's memory child or a deployer's load_variant)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_methods_support import tiny_model

from compress.methods.compiled import CACHE_ENV, CacheProbe, compile_available, compile_cache_dir, use_compile_cache

pytestmark = pytest.mark.slow  # started first under pytest-xdist (tests/conftest.py)


def test_the_cache_lives_in_the_suite_folder_unless_the_user_chose_one(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("W2V_FOOTPRINT_CACHE", str(tmp_path / "suite"))
    monkeypatch.delenv(CACHE_ENV, raising=False)
    ours = tmp_path / "suite" / "compile" / f"torch-{torch.__version__.split('+')[0]}"
    assert compile_cache_dir() == ours
    assert use_compile_cache() == str(ours) and Path(ours).is_dir()
    monkeypatch.setenv(CACHE_ENV, default_cache_dir())  # what torch writes once it used its default: not a choice
    assert use_compile_cache() == str(ours)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert use_compile_cache() == str(tmp_path / "mine")


def test_the_probe_labels_what_was_written_and_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from torch._dynamo.utils import counters

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with CacheProbe() as probe:
        pass
    assert probe.label == ""
    with CacheProbe() as probe:
        counters["inductor"]["fxgraph_cache_hit"] += 1
    assert probe.label == "warm"
    with CacheProbe() as probe:  # a frozen graph bypasses the graph caches: its kernels found, a new wrapper only
        counters["inductor"]["fxgraph_cache_bypass"] += 1
        (tmp_path / "wrapper.py").write_text("")
        (tmp_path / "kernel.lock").write_text("")
    assert probe.label == "warm"
    with CacheProbe() as probe:
        counters["inductor"]["fxgraph_cache_bypass"] += 1
        (tmp_path / "kernel.so").write_bytes(b"")
    assert probe.label == "cold"


@pytest.mark.skipif(not compile_available(), reason="torch.compile needs a C++ compiler on CPU")
def test_a_second_build_of_the_same_graph_is_warm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compress.methods.registry import apply_stages, parse_recipe
    from compress.variants import _info

    monkeypatch.setenv("W2V_FOOTPRINT_CACHE", str(tmp_path))
    monkeypatch.delenv(CACHE_ENV, raising=False)
    small = dict(layers=1, conv_dim=(16,), conv_kernel=(10,), conv_stride=(5,))  # one conv: few kernels to build
    first = apply_stages(tiny_model(**small), parse_recipe("compile"))
    assert _info(first, {}, None)["compile_cache"] == "cold"
    assert any(compile_cache_dir().iterdir())  # written where the suite keeps it
    second = apply_stages(tiny_model(**small), parse_recipe("compile"))  # another model object: compiled again
    assert _info(second, {}, None)["compile_cache"] == "warm"
    assert _info(tiny_model(**small), {}, None)["compile_cache"] == ""
