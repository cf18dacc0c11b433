"""``compile_available``: Inductor on CPU needs a C++ compiler whatever CUDA says, so a CPU-only recipe
(int8-inductor) is not offered on a GPU machine without one (it would fail while building)."""
from __future__ import annotations

import shutil

import pytest
import torch

from compress.methods import compiled


@pytest.mark.parametrize("has_cxx,cuda,want", [
    (False, True, {"cpu": False, "cuda": True, None: True}),
    (True, False, {"cpu": True, "cuda": False, None: True}),
    (False, False, {"cpu": False, "cuda": False, None: False}),
    (True, True, {"cpu": True, "cuda": True, None: True}),
])
def test_compile_available_per_device(monkeypatch: pytest.MonkeyPatch, has_cxx: bool, cuda: bool,
                                      want: dict) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if has_cxx else None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert {d: compiled.compile_available(d) for d in want} == want


def test_only_a_cxx_compiler_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A C compiler alone (cc, gcc) does not build Inductor's C++."""
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name in ("cc", "gcc") else None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not compiled.compile_available("cpu")


def test_int8_inductor_is_not_offered_on_a_gpu_machine_without_a_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torchao")
    from compress.methods.int8_inductor import int8_inductor_available
    from compress.methods.registry import recipe_names

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert not int8_inductor_available()
    names = recipe_names()
    assert not [n for n in names if n.startswith("int8-inductor")] and "compile" in names
