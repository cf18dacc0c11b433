"""The main job's variant list: the paper's recipes, bf16 only where it pays, the teacher's int8 chain with the
bf16 channels-last front end where bf16 is native (else compiled, where a compiler exists),
and each shipped student or pruned model with its chains, the missing ones named."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from footprint.commands import run as main_run


def _student(root: Path, name: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "variant.json").write_text("{}")


def _available(monkeypatch: pytest.MonkeyPatch, prefixes: tuple[str, ...], value: bool) -> None:
    """Make the registry's recipes starting with ``prefixes`` (un)available, as a missing compiler would."""
    import dataclasses

    from compress.methods import registry

    for name, method in list(registry._METHODS.items()):
        if name.startswith(prefixes):
            monkeypatch.setitem(registry._METHODS, name, dataclasses.replace(method, available=lambda: value))


def test_models_follow_what_is_shipped_and_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    import compress.methods.quantize as quantize

    for name in ("distill-L4", "prune-structured-25"):
        _student(tmp_path, name)
    monkeypatch.setenv("W2V_FOOTPRINT_STUDENTS", str(tmp_path))
    monkeypatch.setattr(quantize, "cpu_has_native_bf16", lambda: False)
    _available(monkeypatch, ("compile",), True)
    with caplog.at_level(logging.WARNING):
        models = main_run.main_job_models("embedded", ["cpu"])
    assert models == ["embedded", "int8-dynamic", "prune-sensitivity", "int8-dynamic+compile", "distill-L4",
                      "distill-L4+int8-dynamic", "prune-structured-25"]
    assert "distill-L2" in caplog.text and "prune-structured-50" in caplog.text

    monkeypatch.setattr(quantize, "cpu_has_native_bf16", lambda: True)
    _available(monkeypatch, ("compile", "int8-inductor"), False)
    assert main_run.main_job_models("/my/model", ["cpu"]) == ["/my/model", "int8-dynamic", "prune-sensitivity",
                                                              "bf16-autocast", "int8-dynamic+front-end-bf16",
                                                              "bf16+front-end-bf16"]
    assert main_run.main_job_models("embedded", ["cpu"])[-3:] == [
        "distill-L4", "distill-L4+bf16+front-end-bf16", "prune-structured-25"]
    _available(monkeypatch, ("compile",), True)  # a compiler: the compiled alternatives
    _available(monkeypatch, ("int8-inductor",), False)
    models = main_run.main_job_models("embedded", ["cpu"])
    assert "bf16+front-end-bf16+compile-encoder" in models and "bf16+front-end-bf16" not in models
    assert "int8-dynamic+front-end-bf16" in models and "front-end-bf16+int8-inductor-bf16" not in models
    _available(monkeypatch, ("int8-inductor",), True)  # torchao too: its int8 chain
    models = main_run.main_job_models("embedded", ["cpu"])
    assert "front-end-bf16+int8-inductor-bf16" in models and "int8-dynamic+front-end-bf16" not in models
    assert models[-3:] == ["distill-L4", "distill-L4+bf16+front-end-bf16+compile-encoder", "prune-structured-25"]


def _unavailable(monkeypatch: pytest.MonkeyPatch, prefixes: tuple[str, ...], why: str) -> None:
    """Recipes starting with ``prefixes`` unavailable, the registry saying ``why``."""
    import dataclasses

    from compress.methods import registry

    for name, method in list(registry._METHODS.items()):
        if name.startswith(prefixes):
            monkeypatch.setitem(registry._METHODS, name,
                                dataclasses.replace(method, available=lambda: False, missing=lambda: why))


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.name == "footprint.run"]


def test_one_line_names_each_chain_left_out_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    import compress.methods.quantize as quantize

    for name in main_run.STUDENT_RECIPES:
        _student(tmp_path, name)
    monkeypatch.setenv("W2V_FOOTPRINT_STUDENTS", str(tmp_path))
    monkeypatch.setattr(quantize, "cpu_has_native_bf16", lambda: True)
    _available(monkeypatch, ("compile", "int8-inductor"), True)
    with caplog.at_level(logging.INFO, logger="footprint.run"):
        main_run.main_job_models("embedded", ["cpu"])
    assert _said(caplog) == []  # everything runs: nothing to say

    # a fresh machine without torchao: the suite's best chain is named, with the fallback that ran instead
    _unavailable(monkeypatch, ("int8-inductor",), "torchao is not installed")
    (tmp_path / "distill-L2" / "variant.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="footprint.run"):
        models = main_run.main_job_models("embedded", ["cpu"])
    assert "int8-dynamic+front-end-bf16" in models and "front-end-bf16+int8-inductor-bf16" not in models
    assert _said(caplog) == ["WARNING left out of this run: front-end-bf16+int8-inductor-bf16 (torchao is not "
                             f"installed); distill-L2 ({main_run.NOT_TRAINED})"]

    # no native bf16 and no compiler: every bf16 chain for one reason, the compiled fp32 one for the other
    monkeypatch.setattr(quantize, "cpu_has_native_bf16", lambda: False)
    _unavailable(monkeypatch, ("compile",), "no C++ compiler")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="footprint.run"):
        models = main_run.main_job_models("embedded", ["cpu"])
    assert models[:3] == ["embedded", "int8-dynamic", "prune-sensitivity"] and "distill-L4+int8-dynamic" in models
    assert _said(caplog) == [
        "WARNING left out of this run: bf16-autocast, front-end-bf16+int8-inductor-bf16, "
        f"bf16+front-end-bf16+compile-encoder, distill-L4+bf16+front-end-bf16+compile-encoder ({main_run.NO_BF16}); "
        f"int8-dynamic+compile (no C++ compiler); distill-L2 ({main_run.NOT_TRAINED})"]
    # a user's teacher: no students to miss
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="footprint.run"):
        main_run.main_job_models("/my/model", ["cpu"])
    assert _said(caplog) == ["INFO recipes are applied to /my/model", "WARNING left out of this run: bf16-autocast, "
                             f"front-end-bf16+int8-inductor-bf16, bf16+front-end-bf16+compile-encoder "
                             f"({main_run.NO_BF16}); int8-dynamic+compile (no C++ compiler)"]


def test_registry_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from compress.methods import registry

    assert registry.unavailable_reason("int8-dynamic+prune-sensitivity") is None
    _unavailable(monkeypatch, ("compile",), "no C++ compiler")
    assert registry.unavailable_reason("int8-dynamic+compile") == "no C++ compiler"
    # a method that does not say: its pip extra, else its name
    m = registry._METHODS["ov-int8"]
    monkeypatch.setitem(registry._METHODS, "ov-int8", dataclasses.replace(m, available=lambda: False, missing=None))
    assert registry.unavailable_reason("ov-int8") == ("the 'openvino' extra is not installed (pip install "
                                                      "'w2v-footprint[openvino]')")
    m = registry._METHODS["int8-dynamic"]
    monkeypatch.setitem(registry._METHODS, "int8-dynamic", dataclasses.replace(m, available=lambda: False,
                                                                               missing=lambda: ""))
    assert registry.unavailable_reason("int8-dynamic") == "int8-dynamic is not available here"
