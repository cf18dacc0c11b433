"""Length buckets: each batch padded up to a multiple of a fixed step, so compiled and oneDNN variants reuse their
kernels on lengths never seen.  Exact for layer-norm models (real frames' logits and the text as unbucketed),
refused for group-norm ones; the ``buckets`` recipe marks the model and the Transcriber follows it by default."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_methods_support import tiny_model

from compress.methods.registry import apply_stages, parse_recipe
from core.errors import FootprintError
from core.inference import LengthBuckets, Transcriber

LENGTHS = (5003, 7777, 12345, 9100)


def _audio() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(n).astype(np.float32) for n in LENGTHS]


def _real_frame_logits(tr: Transcriber, audios: list[np.ndarray]) -> tuple[list[torch.Tensor], list[str], tuple]:
    inputs = tr.make_inputs(audios)
    logits = tr.forward(inputs)
    frames = tr.model._get_feat_extract_output_lengths(torch.tensor(inputs.lengths)).tolist()
    return [logits[i, : int(f)] for i, f in enumerate(frames)], tr.decode(logits, inputs), tuple(logits.shape)


@pytest.mark.parametrize("buckets", [LengthBuckets(), LengthBuckets(step=3200, fill_rows=True)])
def test_layer_norm_model_gives_the_same_real_frames_and_text_bucketed(buckets: LengthBuckets) -> None:
    model = tiny_model(layers=2)
    assert model.config.feat_extract_norm == "layer"
    audios = _audio()
    plain = Transcriber(model, batch_size=6)
    bucketed = Transcriber(model, batch_size=6, length_buckets=buckets)
    ref, ref_text, ref_shape = _real_frame_logits(plain, audios)
    out, text, shape = _real_frame_logits(bucketed, audios)
    assert shape[1] > ref_shape[1] and (shape[0] == 6) == buckets.fill_rows  # it did pad
    for a, b in zip(out, ref):
        # measured: at most 6e-8 apart, logits up to 0.36 (other kernel shapes may sum in another order)
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    assert text == ref_text
    assert bucketed.transcribe(audios) == plain.transcribe(audios)


def test_the_recipe_marks_the_model_and_the_transcriber_follows_it_by_default() -> None:
    from compress.variants import _info

    model = apply_stages(tiny_model(layers=1), parse_recipe("buckets"))
    inputs = Transcriber(model).make_inputs(_audio()[:2])
    assert inputs.input_values.shape == (2, 8000)  # 7777 samples -> the 0.5 s bucket
    assert inputs.attention_mask.sum(1).tolist() == [5003, 7777]
    assert Transcriber(model, length_buckets=()).make_inputs(_audio()[:2]).input_values.shape == (2, 7777)
    assert _info(model, {}, None)["length_buckets"] == "0.5s"
    assert _info(tiny_model(layers=1), {}, None)["length_buckets"] == ""
    other = apply_stages(tiny_model(layers=1), parse_recipe("buckets-200"))
    assert Transcriber(other).make_inputs(_audio()[:1]).input_values.shape == (1, 6400)
    with pytest.raises(FootprintError, match="multiple of 20 ms"):
        apply_stages(tiny_model(layers=1), parse_recipe("buckets-210"))


def test_group_norm_models_are_refused() -> None:
    model = tiny_model(layers=1, feat_extract_norm="group")
    with pytest.raises(FootprintError, match="group-norm"):
        apply_stages(model, parse_recipe("buckets"))
    with pytest.raises(FootprintError, match="group-norm"):
        Transcriber(model, length_buckets=LengthBuckets())
    assert Transcriber(model).buckets is None
