"""The one calibration chooser: a seeded draw from the training split that belongs to the evaluated data, refused
when it overlaps the evaluated set, recorded in the variant's info and variant.json."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from test_methods_support import tiny_corpus  # noqa: F401 - fixture

from compress.methods.calibration import (
    EMBEDDED_TRAIN,
    check_no_overlap,
    choose_calibration_audio,
    choose_calibration_manifest,
    default_calibration_spec,
)
from core.errors import FootprintError


def test_the_default_is_the_training_split_beside_the_evaluated_one(tmp_path: Path) -> None:
    assert default_calibration_spec("embedded:dev-clean") == EMBEDDED_TRAIN
    assert default_calibration_spec("embedded:dev-other") == EMBEDDED_TRAIN
    assert default_calibration_spec(None) == EMBEDDED_TRAIN
    libri = tmp_path / "LibriSpeech"
    (libri / "dev-clean").mkdir(parents=True)
    with pytest.raises(FootprintError, match=r"^--data .*dev-clean: no training split beside it .* "
                                             r"give --calibration-data DIR$"):
        default_calibration_spec(str(libri / "dev-clean"))
    (libri / "train-other-500").mkdir()
    assert default_calibration_spec(str(libri / "dev-clean")) == str(libri / "train-other-500")
    (libri / "train-clean-100").mkdir()
    assert default_calibration_spec(str(libri / "test-clean")) == str(libri / "train-clean-100")


def test_a_seeded_draw_over_the_whole_split(tiny_corpus: Path) -> None:  # noqa: F811
    ids = [u.utt_id for u in choose_calibration_manifest(str(tiny_corpus), 8)]
    first = [u.utt_id for u in choose_calibration_manifest(str(tiny_corpus), 4)]
    assert first == ids[:4] and sorted(ids) != ids  # shuffled, not the first n by id
    assert [u.utt_id for u in choose_calibration_manifest(str(tiny_corpus), 4, seed=1)] != first
    again = choose_calibration_audio(str(tiny_corpus), 4)
    assert len(again) == 4 and all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in again)
    short = choose_calibration_manifest(str(tiny_corpus), 8, max_seconds=3.0)
    assert short and all(u.duration_s <= 3.0 for u in short)


def test_calibrating_on_the_evaluated_set_is_refused(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(FootprintError, match=r"^--calibration-data .*: overlaps the evaluated set"):
        choose_calibration_audio(str(tiny_corpus), 4, exclude=str(tiny_corpus))
    copy = tmp_path / "LibriSpeech" / "train-copy"
    shutil.copytree(tiny_corpus, copy)  # another directory, the same utterances
    with pytest.raises(FootprintError, match=r"overlaps the evaluated set .*\(\d+ utterances, e\.g\. "):
        choose_calibration_audio(str(copy), 4, exclude=str(tiny_corpus))
    from core.data.librispeech import read_subset

    evaluated = read_subset(tiny_corpus)
    check_no_overlap(read_subset(copy), ["other-utterance"], str(copy))  # ids: no overlap, no error
    # a sibling subset of the same corpus (train-clean beside dev-clean) is not the same directory
    from core.data.librispeech import Manifest

    sibling = Manifest(evaluated.root, "dev-clean", ())
    assert evaluated.subset != "dev-clean"
    check_no_overlap(evaluated, sibling, str(tiny_corpus))
    with pytest.raises(FootprintError, match="overlaps"):
        check_no_overlap(evaluated, Manifest(evaluated.root, evaluated.subset, ()), str(tiny_corpus))
    with pytest.raises(FootprintError, match="overlaps"):
        check_no_overlap(read_subset(copy), [evaluated.utterances[3].utt_id], str(copy))


def test_structured_pruning_and_int8_static_use_the_same_chooser(tiny_corpus: Path) -> None:  # noqa: F811
    from compress.methods.distill import DistillConfig
    from compress.methods.prune_structured import run

    cfg = DistillConfig(out_dir="unused", data=str(tiny_corpus))
    drawn = run.calibration_audio(cfg, 3, seed=5)
    same = choose_calibration_audio(str(run.subset_dir(cfg.data, cfg.hours_train)), 3, seed=5,
                                    max_seconds=cfg.max_utterance_seconds)
    assert len(drawn) == 3 and all(np.array_equal(a, b) for a, b in zip(drawn, same))


def test_the_variant_records_what_it_calibrated_on(tiny_corpus: Path, tmp_path: Path,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from compress.methods.storage import read_variant_json, save_variant
    from compress.variants import load_variant
    from test_methods_support import tiny_model

    teacher = tmp_path / "teacher"
    model = tiny_model(layers=1)
    model.save_pretrained(str(teacher))
    (teacher / "preprocessor_config.json").write_text('{"do_normalize": true, "sampling_rate": 16000}')
    cal = tmp_path / "LibriSpeech" / "train-clean-100"
    shutil.copytree(tiny_corpus, cal)
    with pytest.raises(FootprintError, match="overlaps the evaluated set"):
        load_variant("int8-static", teacher=str(teacher), calibration_data=str(cal), eval_data=str(tiny_corpus))
    v = load_variant("int8-static", teacher=str(teacher), calibration_data=str(cal))
    assert v.info["calibration_data"] == str(cal) and v.info["calibration_s"] > 0
    assert v.record["calibration_data"] == str(cal)
    assert v.record["stages"][0]["config"]["calibration_data"] == str(cal)
    assert load_variant("int8-dynamic", teacher=str(teacher)).info["calibration_data"] == ""
    save_variant(v.model, tmp_path / "saved", recipe="int8-static", stages=v.record["stages"], do_normalize=True)
    assert read_variant_json(tmp_path / "saved")["calibration_data"] == str(cal)
    assert load_variant(str(tmp_path / "saved")).info["calibration_data"] == str(cal)
