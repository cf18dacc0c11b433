"""The one chooser of calibration audio, for every recipe that calibrates (``int8-static``,
``int8-inductor-static``, structured pruning's importance pass, OpenVINO's post-training quantization).

Calibration must see audio like what the model will transcribe and never the audio it is scored on: a range or an
importance fitted on the evaluated utterances flatters the reported WER.  So the default is the training split that
belongs to the evaluated data (:func:`default_calibration_spec`), the draw is a seeded shuffle of the whole split (its
first utterances by id are one or two speakers, a shuffle spreads over all of them), and a calibration set that
shares utterances with the evaluated one is refused (:func:`check_no_overlap`).
"""
from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import FootprintError

log = logging.getLogger(__name__)

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_TRAIN = "embedded:train-clean"
# LibriSpeech's training subsets, the one most like the clean dev/test sets first
LIBRISPEECH_TRAIN = ("train-clean-100", "train-clean-360", "train-other-500")


def default_calibration_spec(data: str | None) -> str:
    """The training split that belongs to an evaluated data spec: ``embedded:<any>`` -> the synthetic train-clean;
    a real LibriSpeech subset directory -> a training subset beside it; none there is an error naming the option."""
    if not data or str(data).startswith(EMBEDDED_PREFIX):
        return EMBEDDED_TRAIN
    subset = Path(str(data)).expanduser()
    for name in LIBRISPEECH_TRAIN:
        if (subset.parent / name).is_dir():
            return str(subset.parent / name)
    raise FootprintError(f"--data {data}: no training split beside it to calibrate on "
                         f"({' / '.join(LIBRISPEECH_TRAIN)}); give --calibration-data DIR")


def subset_dir(spec: str) -> Path:
    """A data spec -> its LibriSpeech subset directory (the synthetic corpus generated on first use)."""
    from core.data import resolve_data

    return resolve_data(spec)


def _manifest(spec: str) -> Any:
    from core.data.librispeech import read_subset

    d = subset_dir(spec)
    if not d.is_dir():
        raise FootprintError(f"{spec}: no such calibration data directory")
    return read_subset(d)


def _ids(manifest_or_ids: Any) -> set[str]:
    utts = getattr(manifest_or_ids, "utterances", None)
    if utts is not None:
        return {u.utt_id for u in utts}
    return {str(i) for i in manifest_or_ids}


def _subset_path(manifest: Any) -> Path | None:
    """A manifest's subset directory (its ``root`` is the folder holding the subset); None for a list of ids."""
    root, subset = getattr(manifest, "root", None), getattr(manifest, "subset", None)
    return (Path(root) / subset).resolve() if root is not None and subset is not None else None


def check_no_overlap(calibration: Any, evaluated: Any, calibration_spec: str, evaluated_spec: str = "") -> None:
    """Refuse (one line) when the calibration manifest shares utterances with the evaluated one.  Ids are
    LibriSpeech's speaker-chapter-utterance, unique across its subsets; the same directory is refused too."""
    cal_dir, ev_dir = _subset_path(calibration), _subset_path(evaluated)
    same_dir = cal_dir is not None and cal_dir == ev_dir
    shared = _ids(calibration) & _ids(evaluated)
    if same_dir or shared:
        what = f" {evaluated_spec}" if evaluated_spec else ""
        example = f" ({len(shared)} utterances, e.g. {sorted(shared)[0]})" if shared else ""
        raise FootprintError(f"--calibration-data {calibration_spec}: overlaps the evaluated set{what}{example}; "
                             "calibrate on training audio")


def choose_calibration_manifest(spec: str, n: int, seed: int = 0, exclude: Any = None,
                                max_seconds: float | None = None, exclude_spec: str = "") -> list[Any]:
    """``n`` utterances of ``spec``, a seeded shuffle of the whole split (utterances over ``max_seconds`` left
    out); ``exclude`` (a manifest, a data spec or utterance ids) is the evaluated set it must not overlap."""
    manifest = _manifest(spec)
    if exclude is not None:
        if isinstance(exclude, (str, Path)):
            exclude_spec = exclude_spec or str(exclude)
            exclude = _manifest(str(exclude))
        check_no_overlap(manifest, exclude, spec, exclude_spec)
    utts = sorted((u for u in manifest.utterances if max_seconds is None or u.duration_s <= max_seconds),
                  key=lambda u: u.utt_id)
    if not utts:
        raise FootprintError(f"{spec}: no utterances to calibrate on")
    random.Random(seed).shuffle(utts)
    return utts[:n]


def choose_calibration_audio(spec: str, n: int, seed: int = 0, exclude: Any = None,
                             max_seconds: float | None = None, exclude_spec: str = "") -> list[np.ndarray]:
    """The audio of :func:`choose_calibration_manifest`'s utterances, in the drawn order."""
    from core.data.librispeech import load_audio

    utts = choose_calibration_manifest(spec, n, seed, exclude, max_seconds, exclude_spec)
    log.info("calibration: %d utterances of %s (seed %d)", len(utts), spec, seed)
    return [load_audio(u) for u in utts]


def resolve_calibration(calibration_data: str | None, eval_data: str | None) -> tuple[str, str | None]:
    """(the calibration spec, the evaluated spec to exclude): an explicit spec wins, else the default for the
    evaluated data (the synthetic train-clean when none is known)."""
    spec = calibration_data or default_calibration_spec(eval_data)
    return spec, eval_data or None


def calibrate_audio_for(config: Any, model: Any = None) -> list[np.ndarray]:
    """For a recipe config with ``calibration_data``, ``calibration_utterances`` and (optional) ``eval_data``,
    ``calibration_seed``: the audio, the spec recorded on ``model`` (``_footprint_calibration_data``)."""
    spec, evaluated = resolve_calibration(getattr(config, "calibration_data", None),
                                          getattr(config, "eval_data", None))
    config.calibration_data = spec
    audios = choose_calibration_audio(spec, config.calibration_utterances, getattr(config, "calibration_seed", 0),
                                      exclude=evaluated)
    if model is not None:
        model._footprint_calibration_data = spec
    return audios
