"""fairseq wav2vec 2.0 CTC checkpoints import without fairseq and reproduce fairseq's own logits.

The fixtures (tests/fixtures/fairseq/, made by tools/make_fairseq_fixtures.py with real fairseq) are tiny models
with every parameter randomised, in both settings formats (legacy ``args`` Namespace, newer ``cfg`` dicts), both
architectures (group-norm + post-LN + no conv bias; layer-norm + pre-LN + conv bias) and both serialisations.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from footprint.cli import main
from core.errors import FootprintError
from core.text import VOCAB, greedy_ctc_decode
from compress.model_io.fairseq import convert_fairseq_checkpoint
from compress.model_io.safe_load import load_checkpoint

FIX = Path(__file__).parent / "fixtures" / "fairseq"
META = json.loads((FIX / "fixtures.json").read_text(encoding="utf-8"))
NAMES = sorted(META["fixtures"])
TOL = 1e-4


def _wave() -> torch.Tensor:
    return torch.from_numpy(np.load(FIX / META["waveform"]))[None]


def _dict_path(info: dict) -> Path | None:
    return FIX / info["dict"] if info["dict"] else None


def expected_in_our_order(info: dict) -> np.ndarray:
    """fairseq's logits with columns rearranged into core.text.VOCAB order, derived independently here.

    Roles, not names, decide the specials: fairseq's blank is its index 0 (``<s>``), ours is ``<pad>`` (0);
    fairseq's never-emitted ``<pad>`` lands on our never-emitted ``<s>``.
    """
    fs = np.load(FIX / info["logits"])
    symbols = info["fairseq_symbols"]
    role = {"<pad>": "<s>", "<s>": "<pad>"}
    return fs[:, [symbols.index(role.get(s, s)) for s in VOCAB]]


def fairseq_decode(ids: list[int], symbols: list[str]) -> str:
    """What fairseq's Viterbi decoder with zero transitions prints: collapse, drop blank 0 and specials."""
    out, prev = [], None
    for i in ids:
        if i != prev and i != 0 and not symbols[i].startswith("<"):
            out.append(" " if symbols[i] == "|" else symbols[i])
        prev = i
    return " ".join("".join(out).split())


@pytest.fixture(scope="module")
def converted() -> dict[str, tuple]:
    return {name: convert_fairseq_checkpoint(FIX / info["file"], _dict_path(info))
            for name, info in META["fixtures"].items()}


def test_fairseq_not_needed() -> None:
    assert "fairseq" not in sys.modules


@pytest.mark.parametrize("name", NAMES)
def test_logits_match_fairseq(name: str, converted: dict) -> None:
    info = META["fixtures"][name]
    model, do_normalize = converted[name]
    with torch.no_grad():
        ours = model(_wave()).logits[0].numpy()
    expected = expected_in_our_order(info)
    assert ours.shape == expected.shape == (info["frames"], len(VOCAB))
    diff = float(np.abs(ours - expected).max())
    print(f"\n{name}: max |logit diff| vs fairseq = {diff:.3g} (max |logit| {info['max_abs_logit']:.2f})")
    assert diff <= TOL
    # Greedy decoding agrees with fairseq's own argmax read through fairseq's dictionary.
    ours_ids = ours.argmax(-1)
    assert greedy_ctc_decode(ours_ids) == fairseq_decode(info["fairseq_argmax"], info["fairseq_symbols"])
    assert [info["fairseq_symbols"].index({"<pad>": "<s>", "<s>": "<pad>"}.get(VOCAB[i], VOCAB[i]))
            for i in ours_ids] == info["fairseq_argmax"]


@pytest.mark.parametrize("name", NAMES)
def test_config_and_flags(name: str, converted: dict) -> None:
    info = META["fixtures"][name]
    model, do_normalize = converted[name]
    cfg = model.config
    assert do_normalize is info["normalize"]
    assert cfg.feat_extract_norm == ("group" if info["extractor_mode"] == "default" else "layer")
    assert cfg.do_stable_layer_norm is info["layer_norm_first"]
    assert cfg.conv_bias is info["conv_bias"]
    assert sum(p.numel() for p in model.parameters()) == info["params"]
    # mask_emb does not reach the logits, so check it directly.
    state = load_checkpoint(FIX / info["file"])["model"]
    assert torch.equal(model.wav2vec2.masked_spec_embed.detach(), state["w2v_encoder.w2v_model.mask_emb"])


def test_dictionary_order_matters() -> None:
    """Without its dict.ltr.txt, the alphabetical-dictionary fixture must NOT match: the permutation is real."""
    info = META["fixtures"]["legacy_args_layernorm_alphadict"]
    model, _ = convert_fairseq_checkpoint(FIX / info["file"])  # standard order assumed
    with torch.no_grad():
        ours = model(_wave()).logits[0].numpy()
    assert np.abs(ours - expected_in_our_order(info)).max() > 0.1


def test_cli_import_round_trip(tmp_path: Path) -> None:
    """``footprint model import x.pt --out DIR``; plain transformers loads DIR and gives fairseq's logits."""
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

    name = "legacy_args_layernorm_alphadict"
    info = META["fixtures"][name]
    out = tmp_path / "model"
    assert main(["model", "import", str(FIX / info["file"]), "--out", str(out),
                 "--dict", str(_dict_path(info))], groups=["model"]) == 0
    for f in ("config.json", "model.safetensors", "vocab.json", "preprocessor_config.json",
              "tokenizer_config.json"):
        assert (out / f).is_file(), f
    model = Wav2Vec2ForCTC.from_pretrained(out).eval()
    processor = Wav2Vec2Processor.from_pretrained(out)
    assert processor.feature_extractor.do_normalize is info["normalize"]
    assert processor.tokenizer.pad_token_id == 0 and processor.tokenizer.word_delimiter_token == "|"
    assert json.loads((out / "vocab.json").read_text()) == {s: i for i, s in enumerate(VOCAB)}
    with torch.no_grad():
        ours = model(_wave()).logits[0].numpy()
    assert np.abs(ours - expected_in_our_order(info)).max() <= TOL
    ids = ours.argmax(-1)
    assert processor.decode(ids) == greedy_ctc_decode(ids)


def _modified_checkpoint(tmp_path: Path, name: str, extra: dict[str, torch.Tensor]) -> Path:
    ckpt = load_checkpoint(FIX / META["fixtures"][name]["file"])
    ckpt["model"].update(extra)
    path = tmp_path / "modified.pt"
    torch.save(ckpt, path)
    return path


def test_pretraining_modules_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    name = "legacy_args_groupnorm"
    path = _modified_checkpoint(tmp_path, name, {
        "w2v_encoder.w2v_model.quantizer.vars": torch.randn(1, 16, 8),
        "w2v_encoder.w2v_model.quantizer.weight_proj.weight": torch.randn(16, 24),
        "w2v_encoder.w2v_model.project_q.weight": torch.randn(16, 16),
        "w2v_encoder.w2v_model.final_proj.weight": torch.randn(16, 32)})
    with caplog.at_level(logging.INFO, logger="compress.model_io.fairseq"):
        model, _ = convert_fairseq_checkpoint(path)
    assert "pre-training-only" in caplog.text and "quantizer" in caplog.text
    with torch.no_grad():
        ours = model(_wave()).logits[0].numpy()
    assert np.abs(ours - expected_in_our_order(META["fixtures"][name])).max() <= TOL


def test_unknown_weight_refused(tmp_path: Path) -> None:
    path = _modified_checkpoint(tmp_path, "cfg_layernorm",
                                {"w2v_encoder.w2v_model.encoder.layers.0.conv_module.weight": torch.zeros(2)})
    with pytest.raises(FootprintError, match="unexpected weight"):
        convert_fairseq_checkpoint(path)


def test_bad_dictionary(tmp_path: Path) -> None:
    bad = tmp_path / "dict.ltr.txt"
    bad.write_text("| 10\nE 9\n", encoding="utf-8")
    with pytest.raises(FootprintError, match="symbols but the CTC head has 32"):
        convert_fairseq_checkpoint(FIX / META["fixtures"]["cfg_groupnorm"]["file"], bad)


def test_not_a_ctc_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "pretrained.pt"
    torch.save({"model": {"encoder.layer_norm.weight": torch.ones(4)}, "args": None, "cfg": {}}, path)
    with pytest.raises(FootprintError, match="not a fine-tuned wav2vec 2.0 CTC checkpoint"):
        convert_fairseq_checkpoint(path)


def test_import_hf_dir_reorders_vocab(tmp_path: Path) -> None:
    """A local Hugging Face directory whose vocab.json lists the same symbols in another order."""
    from transformers import Wav2Vec2ForCTC

    from core.arch import wav2vec2_config
    from compress.model_io.hf import import_model, load_model_dir, save_model_dir

    torch.manual_seed(0)
    src = tmp_path / "src"
    model = Wav2Vec2ForCTC(wav2vec2_config("embedded", layers=1)).eval()
    save_model_dir(model, src, do_normalize=True)
    order = list(reversed(VOCAB[4:])) + list(VOCAB[:4])  # letters first, blank <pad> at 28
    (src / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(order)}), encoding="utf-8")
    out = import_model(src, tmp_path / "out")
    imported, extractor = load_model_dir(out)
    assert extractor.do_normalize is True
    rows = [order.index(s) for s in VOCAB]
    assert torch.equal(imported.lm_head.weight, model.lm_head.weight[rows])
    assert torch.equal(imported.lm_head.bias, model.lm_head.bias[rows])


def test_hub_id_offline_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compress.model_io.hf import import_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FootprintError) as err:
        import_model("no-such-org/no-such-wav2vec2-model", tmp_path / "out")
    assert "\n" not in str(err.value) and "offline" in str(err.value)
    with pytest.raises(FootprintError, match="no such file"):
        import_model(str(tmp_path / "missing.pt"), tmp_path / "out")
