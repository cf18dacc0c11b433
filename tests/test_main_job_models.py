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
