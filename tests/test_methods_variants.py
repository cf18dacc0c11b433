"""load_variant (specs: embedded, a directory, a recipe chain), trained-student lookup, and the CLI commands."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_methods_support import (  # noqa: F401
    safetensors_payload,
    save_tiny,
    tiny_corpus,
    tiny_model,
    tiny_teacher_dir,
)

from core.errors import FootprintError
from compress.methods.distill import build_student
from compress.methods.registry import parse_recipe
from compress.variants import load_variant

INFO_KEYS = {"params", "size_mb", "size_on_disk_mb", "memory_mb", "sparsity", "conv_layers", "transformer_layers",
             "storage", "compute_dtype", "trained"}


@pytest.fixture()
def env(monkeypatch, tiny_teacher_dir: Path, tmp_path: Path) -> Path:  # noqa: F811
    students = tmp_path / "students"
    monkeypatch.setenv("W2V_FOOTPRINT_TEACHER", str(tiny_teacher_dir))
    monkeypatch.setenv("W2V_FOOTPRINT_STUDENTS", str(students))
    return students


def test_embedded_and_directory(env: Path, tiny_teacher_dir: Path) -> None:  # noqa: F811
    v = load_variant("embedded")
    assert v.recipe == "baseline" and v.do_normalize is True and INFO_KEYS <= set(v.info)
    assert v.info["size_mb"] == pytest.approx(v.info["params"] * 4 / 1e6)
    assert v.info["size_on_disk_mb"] * 1e6 == (tiny_teacher_dir / "model.safetensors").stat().st_size
    assert safetensors_payload(tiny_teacher_dir / "model.safetensors") == v.info["params"] * 4
    d = load_variant(str(tiny_teacher_dir))
    assert d.info["params"] == v.info["params"] and d.path == str(tiny_teacher_dir)


def test_recipes_from_the_teacher(env: Path) -> None:
    base = load_variant("embedded").info
    q = load_variant("int8-dynamic")
    assert q.info["params"] == base["params"] and q.info["size_on_disk_mb"] < 0.45 * base["size_mb"]
    assert q.info["storage"] == "tensors"
    p = load_variant("prune-sensitivity")
    assert p.info["sparsity"] > 0.1 and p.info["pruned_tensors_sparsity"] > 0.15
    pq = load_variant("prune-sensitivity+int8-dynamic")
    assert pq.info["sparsity"] > 0.1 and pq.info["memory_mb"] < 0.6 * base["memory_mb"]
    assert [s["name"] for s in pq.record["stages"]] == ["prune-sensitivity", "int8-dynamic"]
    ac = load_variant("bf16-autocast")
    assert ac.info["compute_dtype"] == "bfloat16-autocast" and ac.info["size_mb"] == base["size_mb"]
    for chain in ("int8-dynamic+bf16-autocast", "bf16-autocast+int8-dynamic"):  # int8 kernels take no bf16
        with pytest.raises(FootprintError, match="float model"):
            load_variant(chain)
    mp = load_variant("maxpool-conv4-untrained")
    assert mp.info["conv_layers"] == 4 and mp.info["params"] < base["params"]
    with pytest.raises(FootprintError, match="unknown recipe 'int4'"):
        load_variant("int4")
    with pytest.raises(FootprintError, match="no such model directory"):
        load_variant("./nowhere/model")


def test_distill_recipe_resolves_to_trained_student(env: Path, tiny_teacher_dir: Path) -> None:  # noqa: F811
    with pytest.raises(FootprintError) as err:
        load_variant("distill-L2")
    msg = str(err.value)
    assert "\n" not in msg and "footprint compress distill --model embedded" in msg and "--layers 2" in msg
    teacher = load_variant("embedded").model
    student, _ = build_student(teacher, 2)
    save_tiny(student, env / "distill-L2", recipe="distill-L2")
    v = load_variant("distill-L2")
    assert v.info["transformer_layers"] == 2 and v.path.endswith("distill-L2")
    vq = load_variant("distill-L2+int8-dynamic")
    assert vq.info["transformer_layers"] == 2 and vq.info["storage"] == "tensors"
    with pytest.raises(FootprintError, match="must come first"):
        parse_recipe("int8-dynamic+distill-L2")
    with pytest.raises(FootprintError, match="maxpool-conv4"):
        load_variant("maxpool-conv4")


def _cli(args: list[str], capsys) -> str:
    from footprint.cli import main

    rc = main(args, groups=["compress"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out.strip().splitlines()[-1]


def test_cli_quantize_prune_maxpool_apply(env: Path, tmp_path: Path, capsys) -> None:
    line = _cli(["compress", "quantize", "--model", "embedded", "--out", str(tmp_path / "q"),
                 "--method", "int8-dynamic"], capsys)
    assert line.startswith(str(tmp_path / "q")) and "int8-dynamic" in line
    line = _cli(["compress", "prune", "--model", "embedded", "--out", str(tmp_path / "p"), "--sparse-storage"],
                capsys)
    assert "pruned tensors" in line
    # quantize the pruned variant: the chain is recorded
    _cli(["compress", "quantize", "--model", str(tmp_path / "p"), "--out", str(tmp_path / "pq")], capsys)
    rec = json.loads((tmp_path / "pq" / "variant.json").read_text())
    assert rec["recipe"] == "prune-sensitivity+int8-dynamic" and rec["source_hash"].startswith("sha256:")
    line = _cli(["compress", "maxpool", "--model", "embedded", "--conv-layers", "4", "--out", str(tmp_path / "m")],
                capsys)
    assert "4 conv" in line and "GFLOPs" in line
    _cli(["compress", "apply", "--recipe", "prune-sensitivity+int8-dynamic", "--out", str(tmp_path / "a")], capsys)
    v = load_variant(str(tmp_path / "a"))
    assert v.recipe == "prune-sensitivity+int8-dynamic" and v.info["sparsity"] > 0.1
    assert "int8-dynamic" in _cli(["compress", "recipes"], capsys)
    from footprint.cli import main

    rc = main(["compress", "apply", "--recipe", "bf16-autocast", "--out", str(tmp_path / "ac")], groups=["compress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nothing to save" in err[0]


def test_cli_error_is_one_line(env: Path, tmp_path: Path, capsys) -> None:
    from footprint.cli import main

    rc = main(["compress", "quantize", "--model", "distill-L6", "--out", str(tmp_path / "x")], groups=["compress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "footprint compress distill" in err[0]


def test_trained_maxpool_student_via_init_from(env: Path, tiny_teacher_dir: Path, tiny_corpus: Path,  # noqa: F811
                                               tmp_path: Path) -> None:
    """maxpool -> distill --init-from: the student keeps the max-pool front end and the teacher's frame rate."""
    from compress.methods.distill import DistillConfig, distill
    from compress.methods.maxpool import MaxPoolConfig, apply_maxpool
    from compress.methods.storage import save_variant

    mp = apply_maxpool(load_variant("embedded").model, MaxPoolConfig(4))
    save_variant(mp, tmp_path / "mp", recipe="maxpool-conv4-untrained", stages=[], do_normalize=True,
                 trained=False)
    res = distill(DistillConfig(out_dir=str(env / "maxpool-conv4"), teacher=str(tiny_teacher_dir),
                                init_from=str(tmp_path / "mp"), layers=2, data=str(tiny_corpus), val_utterances=4,
                                epochs=1, max_steps=2, batch_seconds=3, threads=1, lr=1e-3,
                                device="cpu", save_dtype="float16"))
    assert res.steps == 2
    v = load_variant("maxpool-conv4")
    assert v.info["conv_layers"] == 4 and v.info["transformer_layers"] == 2 and v.info["trained"]
    # stored in fp16 (shipping size), computed in fp32
    assert v.dtype == torch.float32 and v.record["storage_dtype"] == "float16"
    assert safetensors_payload(env / "maxpool-conv4" / "variant.safetensors") == 2 * v.info["params"]
    x = torch.randn(1, 7777)
    with torch.no_grad():
        assert v.model(x).logits.shape[1] == load_variant("embedded").model(x).logits.shape[1]


def test_arch_specs_take_recipes_computed_from_the_model() -> None:
    from compress.variants import load_variant

    v = load_variant("arch-embedded-L1+prune-sensitivity+int8-dynamic", device="cpu")
    assert v.info["quantized_engine"] and v.info["sparsity"] > 0 and v.info["trained"] is False
    assert v.info["transformer_layers"] == 1
    with pytest.raises(FootprintError, match="distill-L4 needs trained weights"):
        load_variant("arch-embedded-L1+distill-L4", device="cpu")
    with pytest.raises(FootprintError, match="run on CPU only, not cuda"):  # refused at load, before any forward
        load_variant("arch-embedded-L1+int8-dynamic", device="cuda")
