"""The method registry: names and patterns, generated CLI choices and README table, one module per method."""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.errors import FootprintError
from compress.methods import registry
from compress.methods.registry import command_methods, markdown_table, recipe_names, register_method, resolve_stage

ROOT = Path(__file__).resolve().parents[1]


def test_readme_table_is_the_generated_one() -> None:
    text = (ROOT / "compress" / "methods" / "README.md").read_text()
    found = re.search(r"<!-- methods table:[^\n]*-->\n(.*?)<!-- end of methods table -->", text, re.S)
    assert found, "compress/methods/README.md: the table markers are missing"
    assert found.group(1) == markdown_table(), "regenerate it with: footprint compress recipes --markdown"


def test_every_method_module_registers_beside_its_handler() -> None:
    modules = {m.module for m in registry.methods()}
    assert modules == {f"compress.methods.{n}" for n in ("baseline", "students", "maxpool", "quantize", "prune",
                                                                       "compiled", "front_end", "int8_inductor", "ort",
                                                                       "openvino", "buckets")}
    assert "bf16-autocast" in recipe_names()


def test_patterns_resolve_to_config_fields_and_the_most_specific_wins() -> None:
    m, cfg = resolve_stage("maxpool-conv4-untrained")
    assert m.name == "maxpool-conv{c}-untrained" and cfg.conv_layers == 4
    m, cfg = resolve_stage("maxpool-conv4-L4-last")
    assert m.needs_training and (cfg.name, cfg.conv_layers, cfg.layers) == ("maxpool-conv4-L4-last", 4, 4)
    m, cfg = resolve_stage("distill-L6-last")
    assert m.needs_training and (cfg.name, cfg.layers) == ("distill-L6-last", 6)
    assert resolve_stage("bf16")[1].dtype == "bfloat16" and resolve_stage("fp16")[1].dtype == "float16"
    with pytest.raises(FootprintError, match="unknown recipe 'distill-Lx'"):
        resolve_stage("distill-Lx")


def test_quantize_choices_come_from_the_registry() -> None:
    assert command_methods("quantize") == ["int8-dynamic", "int8-static", "fp16", "bf16", "int8-weight-only-torchao"]


def test_building_the_cli_imports_no_method() -> None:
    code = ("import sys, footprint.cli as c; c.build_parser(); "
            "assert 'torch' not in sys.modules and 'compress.methods' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@dataclass
class _ScaleConfig:
    factor: float = 2.0


def test_a_new_method_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))

    @register_method("scale-x{k}", _ScaleConfig, description="test only", command="quantize",
                     options=lambda name, c: {"factor": float(c["k"])})
    def apply_scale(model: Any, config: _ScaleConfig) -> Any:
        return model * config.factor

    assert "scale-x{k}" in recipe_names() and "scale-x{k}" in command_methods("quantize")
    stages = registry.parse_recipe("baseline+scale-x3")
    assert registry.apply_stages(2, stages) == 6 and stages[0].as_record() == {"name": "scale-x3",
                                                                                "config": {"factor": 3.0}}
    with pytest.raises(ValueError, match="registered twice"):
        register_method("int8-dynamic", _ScaleConfig, description="clash")(apply_scale)


def test_an_unavailable_recipe_says_why_and_names_its_extra_only_if_it_has_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    for name in ("compile", "ort-int8"):
        monkeypatch.setitem(registry._METHODS, name,
                            dataclasses.replace(registry._METHODS[name], available=lambda: False))
    with pytest.raises(FootprintError, match=r"'compile' is not available here: .*C\+\+ compiler") as err:
        resolve_stage("compile")
    assert "pip install" not in str(err.value)  # a compiler is not a pip extra
    with pytest.raises(FootprintError, match=r"pip install 'w2v-footprint\[onnx\]'"):
        resolve_stage("ort-int8")
