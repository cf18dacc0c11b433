"""Model cards the Hub understands: huggingface_hub reads every shipped card (from the local file, no network),
its co2_eq_emissions is the making record's CO2 in grams (absent, never zero, without one) and its model-index WER
is the stored evaluation's; ``footprint model card`` writes the same card for a user's folder."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from compress.card import (CARD_FILE, GENERATED, Evaluation, evaluation_from_results, read_evaluation, render_card,
                           training_type, write_card, write_evaluation)
from core.errors import FootprintError
from core.making import Phase, add_phase, read_making
from footprint.cli import main

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED = ROOT / "compress" / "embedded"
SHIPPED = [EMBEDDED / "teacher"] + sorted(p for p in (EMBEDDED / "students").iterdir() if p.is_dir())
CO2_KEYS = {"emissions", "source", "training_type", "geographical_location", "hardware_used"}
# dev-clean WER in percent, from the students' and the teacher's hand-written cards (their Scores tables)
WER_PCT = {"teacher": 8.97, "distill-L2": 23.99, "distill-L3": 19.92, "distill-L4": 17.16, "distill-L4-frac": 22.32,
           "distill-L4-last": 20.67, "distill-L6": 14.59, "maxpool-conv4": 13.84, "prune-structured-50": 18.25,
           "prune-structured-25": 29.20}


def load(folder: Path) -> ModelCard:
    path = folder / CARD_FILE
    assert path.is_file(), f"{path}: no card (footprint model card {folder.relative_to(ROOT)})"
    return ModelCard.load(path)  # a Path to an existing file: read locally, never from the Hub


def test_every_shipped_model_is_listed() -> None:
    assert {p.name for p in SHIPPED} == set(WER_PCT)


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_card_reads_back(folder: Path) -> None:
    card = load(folder)
    data = card.data.to_dict()
    making = read_making(folder)
    if making is not None and not math.isnan(making.co2_kg):
        co2 = data["co2_eq_emissions"]
        assert set(co2) == CO2_KEYS
        assert co2["emissions"] == making.co2_kg * 1000.0       # grams, as the Hub wants
        assert co2["source"] == f"w2v-footprint making record: {making.label}"
    else:
        assert "co2_eq_emissions" not in data                   # no record: no claim, never a zero
        assert "# co2_eq_emissions: not recorded" in (folder / CARD_FILE).read_text(encoding="utf-8")
    ev = read_evaluation(folder)
    assert ev is not None and ev.dataset == "embedded:dev-clean"
    (wer, *rest) = card.data.eval_results
    assert (wer.task_type, wer.metric_type, wer.dataset_type) == ("automatic-speech-recognition", "wer",
                                                                  "embedded:dev-clean")
    assert wer.metric_value == round(ev.wer * 100, 2) == WER_PCT[folder.name]
    assert card.data.model_name == folder.name


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_card_is_current(folder: Path) -> None:
    """The card is what the generator makes of the record now (after a record changes: footprint model card)."""
    assert (folder / CARD_FILE).read_text(encoding="utf-8") == render_card(folder), (
        "stale card: footprint model card compress/embedded/teacher compress/embedded/students/*/")


def test_teacher_keeps_its_written_body() -> None:
    text = (EMBEDDED / "teacher" / CARD_FILE).read_text(encoding="utf-8")
    body = text.split("\n---\n", 1)[1]
    assert body.lstrip().startswith("# Model card: the shipped teacher") and GENERATED not in text
    assert "## Limits" in body and "**8.97 %**" in body
    assert training_type(None) == "pre-training"


def _variant(tmp_path: Path, recipe: str = "distill-L4") -> Path:
    d = tmp_path / "my-student"
    d.mkdir()
    (d / "variant.json").write_text(json.dumps({"recipe": recipe, "stages": [{"name": recipe}], "params": 2159520,
                                                "transformer_layers": 4, "source_model": "embedded"}))
    return d


def test_user_card_with_making_record(tmp_path: Path) -> None:
    d = _variant(tmp_path)
    add_phase(d, Phase("distill", 600.0, "cpu", "Intel Xeon X", energy_kwh=0.024, co2_kg=0.012,
                       energy_method="rapl", energy_measured=True, carbon_intensity_g_per_kwh=500.0,
                       carbon_intensity_source="fixed 500 g/kWh (FR)", command="footprint compress distill ..."))
    add_phase(d, Phase("recovery", 300.0, "cuda", "NVIDIA H100", energy_kwh=0.006, co2_kg=0.003,
                       energy_method="nvml", energy_measured=True, carbon_intensity_source="fixed 500 g/kWh (FR)"))
    write_evaluation(d, Evaluation("embedded:dev-clean", 0.123456, 0.0456, run="test"))
    write_card(d)
    card = load(d)
    co2 = card.data.to_dict()["co2_eq_emissions"]
    # 0.012 + 0.003 kg = 15 g; both phases measured by hardware counters
    assert co2 == {"emissions": pytest.approx(15.0, abs=1e-12), "source": "w2v-footprint making record: measured "
                   "(nvml, rapl)", "training_type": "distillation", "geographical_location": "fixed 500 g/kWh (FR)",
                   "hardware_used": "Intel Xeon X; NVIDIA H100"}
    wer, cer = card.data.eval_results
    assert (wer.metric_value, cer.metric_type, cer.metric_value) == (12.35, "cer", 4.56)
    assert "footprint compress distill ..." in card.text and GENERATED in card.text
    # generated again: the same text (the body is regenerated, not appended to)
    first = (d / CARD_FILE).read_text()
    write_card(d)
    assert (d / CARD_FILE).read_text() == first


def test_user_card_without_records(tmp_path: Path) -> None:
    d = _variant(tmp_path, "distill-L4+int8-dynamic")
    write_card(d)
    card = load(d)
    data = card.data.to_dict()
    assert "co2_eq_emissions" not in data and "model-index" not in data
    assert "Not recorded: this folder has no making record" in card.text
    # a record whose phases lack CO2: still no block, never a zero
    add_phase(d, Phase("distill", 60.0, "cpu"))
    write_card(d)
    card = load(d)
    assert "co2_eq_emissions" not in card.data.to_dict()
    assert "Total: 0.02 h; energy not recorded; CO2 not recorded" in card.text


def test_training_types() -> None:
    stages = lambda *n: {"stages": [{"name": x} for x in n]}  # noqa: E731
    assert training_type(stages("distill-L4", "int8-dynamic")) == "distillation + post-training quantization"
    assert training_type(stages("prune-structured-50")) == "structured pruning + distillation"
    assert training_type(stages("maxpool-conv4-L12")) == "distillation"
    assert training_type(stages("prune-sensitivity")) == "pruning"
    assert training_type(stages("compile")) == "compression (compile)"
    assert training_type(stages("compile-bf16")) == "compression (compile-bf16)"   # by prefix, not substring
    assert training_type(stages("maxpool-conv4-untrained")) == "compression (maxpool-conv4-untrained)"
    assert training_type({"recipe": "fp16"}) == "precision conversion"


def test_hand_written_body_kept_front_matter_replaced(tmp_path: Path) -> None:
    d = _variant(tmp_path)
    (d / CARD_FILE).write_text("---\nco2_eq_emissions:\n  emissions: 0\n---\n\n# Mine\n\nkept\n")
    write_card(d)
    text = (d / CARD_FILE).read_text()
    assert text.endswith("# Mine\n\nkept\n") and "emissions: 0" not in text and GENERATED not in text


def test_command_with_results_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _variant(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    rows = [("my-student", str(d), "embedded:dev-clean", w, 0.05) for w in (0.2, 0.1, 0.6)]
    rows += [("other", "elsewhere", "embedded:dev-clean", 0.9, 0.5), ("my-student", str(d), "embedded:dev-other",
                                                                          0.8, 0.4),
             ("my-student", str(tmp_path / "else" / "my-student"), "embedded:dev-clean", 0.9, 0.5)]  # same name
    (run / "results.csv").write_text("run_id,variant,model_path,dataset,wer,cer,n_utts,manifest_hash\n" + "".join(
        f"r7,{v},{p},{ds},{w},{c},300,abc\n" for v, p, ds, w, c in rows))
    assert main(["model", "card", str(d), "--results", str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(d / CARD_FILE)
    ev = read_evaluation(d)
    assert (ev.wer, ev.cer, ev.n_utts, ev.manifest_hash) == (0.2, 0.05, 300, "abc")  # median of the dev-clean rows
    assert load(d).data.eval_results[0].metric_value == 20.0
    assert json.loads((d / "variant.json").read_text())["evaluation"]["run"].startswith("results run r7")
    with pytest.raises(FootprintError, match="no dev-clean WER"):
        evaluation_from_results(tmp_path / "nobody", run)
    with pytest.raises(FootprintError, match="not a model folder"):
        write_card(tmp_path / "nobody")
