"""Model size and FLOPs: the paper's 315,461,792 parameters / 1262 MB, Table 2's depths, the FLOPs split."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from footprint.cli import main
from core.arch import wav2vec2_config
from core.model_info import PAPER_TABLE2, model_info

LARGE_PARAMS = 315_461_792
LAYER_PARAMS = 12_596_224


@pytest.fixture(scope="module")
def large():
    return model_info(wav2vec2_config("large"))


def test_large_size_matches_paper(large) -> None:
    assert large.params == LARGE_PARAMS
    assert round(large.size_mb) == 1262
    assert (large.transformer_layers, large.conv_layers, large.hidden_size) == (24, 7, 1024)


def test_per_layer_params() -> None:
    p23 = model_info(wav2vec2_config("large", layers=23)).params
    assert LARGE_PARAMS - p23 == LAYER_PARAMS


def test_table2_depths_with_pretraining_modules() -> None:
    """The paper's students = our depth + wav2vec 2.0's pre-training modules (1,951,872 params for large)."""
    for layers, (paper_m, paper_mb) in PAPER_TABLE2.items():
        mi = model_info(wav2vec2_config("large", layers=layers))
        assert mi.params == LARGE_PARAMS - (24 - layers) * LAYER_PARAMS
        assert mi.pretraining_module_params == 1_951_872
        if layers < 24:  # students: within 1 MB of the paper once the kept modules are counted
            assert abs((mi.params + mi.pretraining_module_params) * 4 / 1e6 - paper_mb) < 1.0


@pytest.mark.parametrize("arch", ["large", "embedded"])
def test_flops_split(arch: str) -> None:
    mi = model_info(wav2vec2_config(arch))
    assert mi.conv_flops_per_s > 0 and mi.transformer_flops_per_s > 0
    assert mi.transformer_fraction > 0.7
    assert sum(mi.flops_detail.values()) == pytest.approx(mi.total_flops_per_s)


def test_flops_match_hand_count(large) -> None:
    # 7.2 s -> 359 frames; per frame and layer 4*1024^2 + 2*1024*4096 MACs; FLOPs = 2 x MACs.
    frames_per_s = 359 / 7.2
    per_layer_macs = 4 * 1024 * 1024 + 2 * 1024 * 4096
    expected = 2 * per_layer_macs * 24 * frames_per_s
    assert large.flops_detail["layer_projections_ffn"] == pytest.approx(expected, rel=1e-6)
    # first conv: 115200 samples, kernel 10, stride 5 -> 23039 outputs x 512 channels x 10 taps
    assert large.flops_detail["attention_scores"] == pytest.approx(2 * 2 * 359 * 359 * 1024 * 24 / 7.2)
    assert large.flops_detail["conv_front_end"] > 2 * 23039 * 512 * 10 / 7.2


def test_real_model_equals_config() -> None:
    from transformers import Wav2Vec2ForCTC

    cfg = wav2vec2_config("embedded", layers=2)
    real, bare = model_info(Wav2Vec2ForCTC(cfg)), model_info(cfg)
    assert real.params == bare.params and real.total_flops_per_s == pytest.approx(bare.total_flops_per_s)


def test_cli_table(capsys: pytest.CaptureFixture) -> None:
    assert main(["model", "info", "--arch", "large", "--layers", "24,12,10,8,6,4"], groups=["model"]) == 0
    out = capsys.readouterr().out
    assert "315,461,792" in out and "1262" in out and "12" in out
    for paper_mb in ("665", "564", "464", "363", "262"):
        assert paper_mb in out


def test_cli_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["model", "info", "--arch", "embedded", "--json"], groups=["model"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["transformer_fraction"] > 0.7 and rows[0]["conv_layers"] == 7


def test_cli_model_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from transformers import Wav2Vec2ForCTC

    from compress.model_io.hf import save_model_dir

    model = Wav2Vec2ForCTC(wav2vec2_config("embedded", layers=2))
    save_model_dir(model, tmp_path / "m", do_normalize=True)
    assert main(["model", "info", str(tmp_path / "m"), "--json"], groups=["model"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["params"] == sum(p.numel() for p in model.parameters())
    assert rows[0]["transformer_layers"] == 2 and rows[0]["size_on_disk_mb"] > 0


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["model", "info", "--arch", "large", "--layers", "x"], groups=["model"]) == 2
    assert main(["model", "info", str(tmp_path / "nope")], groups=["model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("footprint: error:") for line in err)
