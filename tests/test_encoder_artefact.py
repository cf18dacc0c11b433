"""``compile-encoder``'s AOTInductor artefact: what is built, loaded, rebuilt or given up, without compiling anything
(the build and the package loader are stand-ins; tests/test_methods_compiled.py compiles a real one)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from test_methods_support import tiny_model

from compress.methods import aoti, compiled, encoder_artefact
from compress.methods.registry import apply_stages, parse_recipe


def _fake_package(calls: list[tuple]) -> object:
    def run(*args: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(a.shape for a in args))
        return torch.zeros(args[0].shape[0], args[0].shape[1], args[0].shape[2])
    return run


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    state: dict = {"built": 0, "calls": [], "folder": tmp_path / "artefact"}

    def build(key, parts, encoder, model_config, with_mask, freezing, implementation):  # noqa: ANN001, ANN202
        state["built"] += 1
        state["attention"] = implementation
        state["folder"].mkdir(exist_ok=True)
        return state["folder"]

    monkeypatch.setattr(encoder_artefact, "build", build)
    monkeypatch.setattr(aoti, "load_package", lambda folder: _fake_package(state["calls"]))
    return state


def test_built_once_then_loaded_and_called_as_the_encoder(stand_ins, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(aoti, "find", lambda key: None)
    model = apply_stages(tiny_model(layers=1), parse_recipe("compile-encoder"))
    assert stand_ins["built"] == 1 and compiled.compiled_info(model)["compile_artefact"] == "built"
    assert compiled.compiled_info(model)["runtime"] == "AOTInductor (encoder)"
    assert stand_ins["attention"] == "sdpa"  # an fp32 encoder keeps ATen's kernel; a bf16 one: matmuls
    names = list(tiny_model(layers=1).state_dict())
    assert list(model.state_dict()) == names  # the encoder keeps its weights under their names

    monkeypatch.setattr(aoti, "find", lambda key: stand_ins["folder"])
    monkeypatch.setattr(aoti, "read_meta", lambda folder, parts: {})
    again = apply_stages(tiny_model(layers=1), parse_recipe("compile-encoder"))
    assert stand_ins["built"] == 1 and compiled.compiled_info(again)["compile_artefact"] == "loaded"
    assert compiled.compiled_info(again)["compile_cache"] == "warm"
    with torch.inference_mode():
        again(torch.randn(1, 4000), attention_mask=torch.ones(1, 4000, dtype=torch.long))
    (hidden, mask), = stand_ins["calls"]
    assert hidden[0] == 2 and mask[0] == 2  # a batch of one runs as two where the mask requires it


def test_a_stale_artefact_is_one_warning_and_built_again(stand_ins, monkeypatch, caplog) -> None:  # noqa: ANN001
    monkeypatch.setattr(aoti, "find", lambda key: stand_ins["folder"])

    def stale(folder, parts):  # noqa: ANN001, ANN202
        raise aoti.ArtefactError(f"{folder}: built for another graph, machine or version (stale)")

    monkeypatch.setattr(aoti, "read_meta", stale)
    with caplog.at_level(logging.WARNING):
        model = apply_stages(tiny_model(layers=1), parse_recipe("compile-encoder"))
    assert stand_ins["built"] == 1 and compiled.compiled_info(model)["compile_artefact"] == "built"
    # the suite's own warnings: a library's import-time noise (torchao's optional kernels) is not ours to count
    ours = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("compress")]
    assert [r.getMessage() for r in ours] == [
        f"compile-encoder: compiled artefact not used, building it again: {stand_ins['folder']}: built for another "
        "graph, machine or version (stale)"]


def test_a_failing_artefact_falls_back_to_torch_compile(monkeypatch, caplog) -> None:  # noqa: ANN001
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("C++ compile failed\nlong log")

    monkeypatch.setattr(encoder_artefact, "compile_encoder", broken)
    monkeypatch.setattr(compiled, "_torch_compile", lambda model, target, config: "cold")
    with caplog.at_level(logging.WARNING):
        model = apply_stages(tiny_model(layers=1), parse_recipe("compile-encoder"))
    info = compiled.compiled_info(model)
    assert info["compile_artefact"] == "failed" and info["runtime"] == "torch.compile (encoder)"
    assert "AOTInductor artefact failed (RuntimeError: C++ compile failed); compiling with torch.compile" in caplog.text


def test_no_artefact_for_an_autocast_model_or_when_asked(monkeypatch) -> None:  # noqa: ANN001
    from compress.methods.registry import resolve_stage

    monkeypatch.setattr(encoder_artefact, "compile_encoder", lambda *a: pytest.fail("artefact built"))
    monkeypatch.setattr(compiled, "_torch_compile", lambda model, target, config: "warm")
    autocast = apply_stages(tiny_model(layers=1), parse_recipe("bf16-autocast+compile-encoder"))
    assert compiled.compiled_info(autocast)["runtime"] == "torch.compile (encoder)"  # autocast is not exported
    method, cfg = resolve_stage("compile-encoder", {"artefact": False})
    assert compiled.compiled_info(method.apply(tiny_model(layers=1), cfg))["runtime"] == "torch.compile (encoder)"


def test_a_build_made_while_profiling_has_its_own_key() -> None:
    """Inductor settings that change the generated code but not the graph are part of the key: an artefact built
    with kernel profiling on (a record-function call in every kernel) is never loaded as the suite's own."""
    from torch._inductor import config as inductor_config

    graph, modules = {"graph": "any"}, ("compress.methods.aoti",)
    plain, _ = aoti.artefact_key(graph, modules)
    with inductor_config.patch({"cpp.enable_kernel_profile": True}):
        profiled, parts = aoti.artefact_key(graph, modules)
    assert profiled != plain and parts["machine"]["inductor"]["cpp.enable_kernel_profile"] is True
    assert aoti.artefact_key(graph, modules)[0] == plain
