"""``int8-inductor``'s AOTInductor artefact: built by the first build, loaded (not compiled) by a fresh process with
the same logits, rebuilt in one warning when unreadable, and keyed by what its code and weights depend on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_methods_support import tiny_model

from compress.methods.int8_inductor import int8_inductor_available

pytestmark = [pytest.mark.slow,  # started first under pytest-xdist (tests/conftest.py)
              pytest.mark.skipif(not int8_inductor_available(),
                                 reason="int8-inductor needs torchao's PT2E quantizer and a C++ compiler")]

ROOT = Path(__file__).resolve().parents[1]

# Builds the tiny chain, runs lengths it was not built on (after one warm-up call), prints its info and writes the
# logits.  With NO_COMPILE set, any AOTInductor or torch.compile compilation in the process raises.
CHILD = r"""
import json, sys, torch
from test_methods_support import tiny_model
if sys.argv[2] == "NO_COMPILE":
    def refuse(*a, **k):
        raise AssertionError("compiled in the loading process")
    torch._inductor.aoti_compile_and_package = refuse
    torch.compile = refuse
from compress.methods.compiled import compiled_info
from compress.methods.registry import apply_stages, parse_recipe
model = apply_stages(tiny_model(layers=1), parse_recipe("front-end-bf16+int8-inductor-bf16"))
torch.manual_seed(5)
xs = [torch.randn(2, 6123), torch.randn(1, 9377), torch.randn(4, 4567)]
with torch.inference_mode():
    model(torch.randn(2, 5000))
    logits = [model(x).logits for x in xs]
torch.save(logits, sys.argv[1])
print("INFO " + json.dumps(compiled_info(model)))
"""


def _child(cache: Path, out: Path, mode: str) -> dict[str, object]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), mode], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("INFO "))[5:])


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A compile cache holding the tiny chain's artefact, built by a fresh process; and its logits."""
    root = tmp_path_factory.mktemp("artefact")
    info = _child(root / "cache", root / "built.pt", "BUILD")
    assert info["compile_artefact"] == "built" and info["compile_cache"] == "cold"
    assert info["artefact_build_s"] > 0 and info["artefact_load_s"] >= 0
    assert info["runtime"].startswith("AOTInductor (encoder int8 + bf16")
    return root / "cache", root / "built.pt"


def test_a_fresh_process_loads_it_without_compiling_and_gets_the_same_logits(cache: tuple[Path, Path],
                                                                           tmp_path: Path) -> None:
    folder, built = cache
    info = _child(folder, tmp_path / "loaded.pt", "NO_COMPILE")
    assert info["compile_artefact"] == "loaded" and info["compile_cache"] == "warm"
    assert "artefact_build_s" not in info and info["artefact_load_s"] > 0
    # the same compiled code and constants: the same numbers, on lengths and batches neither process built on
    for a, b in zip(torch.load(built), torch.load(tmp_path / "loaded.pt")):
        assert a.shape == b.shape
        if a.shape[0] > 1:
            assert torch.equal(a, b)
        else:  # a batch of one runs as two copies of itself; it moves slightly from one process (or call) to the
            # next, in the built process too (measured 8.6e-5 at most)
            assert float((a - b).abs().max()) < 1e-3 and torch.equal(a.argmax(-1), b.argmax(-1))


def test_an_unreadable_artefact_is_reported_in_one_line_and_built_again(cache: tuple[Path, Path],
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    from compress.methods.compiled import compiled_info
    from compress.methods.registry import apply_stages, parse_recipe

    folder, _ = cache
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(folder))
    (package,) = folder.glob("aoti/*/encoder.pt2")
    package.write_bytes(b"not a package")
    # the key holds the thread count: run with the building process's, whatever an earlier test left set
    built_threads = json.loads((package.parent / "meta.json").read_text())["key"]["machine"]["threads"]
    threads = torch.get_num_threads()
    torch.set_num_threads(built_threads)
    with caplog.at_level("WARNING", logger="compress.methods.int8_inductor"):
        model = apply_stages(tiny_model(layers=1), parse_recipe("front-end-bf16+int8-inductor-bf16"))
    warned = [r.getMessage() for r in caplog.records if "artefact not used" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0] and "encoder.pt2" in warned[0]
    assert compiled_info(model)["compile_artefact"] == "built"
    assert package.stat().st_size > 1000  # replaced by the new build
    torch.set_num_threads(threads)
    with torch.inference_mode():
        assert model(torch.randn(2, 7000)).logits.isfinite().all()


def test_the_key_follows_the_weights_threads_instruction_set_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from compress.methods.int8_artefact import key_for
    from compress.methods.registry import resolve_stage

    model = tiny_model(layers=1)
    _, config = resolve_stage("int8-inductor")
    key, parts = key_for(model.wav2vec2.encoder, model.config, config, True)
    assert key_for(tiny_model(layers=1).wav2vec2.encoder, model.config, config, True)[0] == key  # deterministic
    config.eval_data = "elsewhere"  # dynamic: no calibration, the evaluated set does not change the graph
    assert key_for(model.wav2vec2.encoder, model.config, config, True)[0] == key
    _, bf16 = resolve_stage("int8-inductor-bf16")
    assert key_for(model.wav2vec2.encoder, model.config, bf16, True)[0] != key
    assert key_for(model.wav2vec2.encoder, model.config, config, False)[0] != key
    with torch.no_grad():
        model.wav2vec2.encoder.layers[0].attention.q_proj.weight[0, 0] += 1e-3
    assert key_for(model.wav2vec2.encoder, model.config, config, True)[0] != key
    model = tiny_model(layers=1)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN's prepacked weight layout depends on the ISA
    assert key_for(model.wav2vec2.encoder, model.config, config, True)[0] != key
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    threads = torch.get_num_threads()
    try:  # Inductor writes the thread count into the generated OpenMP code
        torch.set_num_threads(threads + 1)
        assert key_for(model.wav2vec2.encoder, model.config, config, True)[0] != key
    finally:
        torch.set_num_threads(threads)
    assert key_for(model.wav2vec2.encoder, model.config, config, True)[0] == key
    assert parts["machine"]["torch"] == torch.__version__ and parts["machine"]["torchao"]
