"""Size and compute of a wav2vec 2.0 CTC model: parameters, fp32 MB, layer counts, FLOPs per second of audio.

Conventions (stated in every report that uses these numbers):

* ``size_mb`` is the paper's MB: parameters x 4 bytes / 1e6 (fp32, decimal megabytes).  315,461,792 -> 1262 MB.
* FLOPs = 2 x multiply-accumulates of the convolutions and matrix products, per second of audio, for an utterance
  of ``utterance_s`` seconds (default 7.2 s, the mean of LibriSpeech dev-clean).  Norms, activations, softmax,
  biases and residual adds are not counted (well under 1 % here).
* "conv front end" = the feature-extractor convolutions.  "transformer" = everything after them: feature
  projection, positional convolution, the layers (projections, attention scores QK^T and AV, feed-forward) and
  the CTC head.  Attention scores grow with the utterance length, hence the stated length.

FLOPs are read off the modules themselves (conv shapes, Linear in/out features), so they follow a model whose
layers were pruned or replaced; a bare config is instantiated on the ``meta`` device (no memory, no weights).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

SAMPLE_RATE = 16_000
# LibriSpeech dev-clean mean: about 5.4 h (the paper, section 7) over its 2703 utterances = 7.2 s.
MEAN_UTTERANCE_S = 7.2

# The paper's Table 2 (students 12..6 layers) and Table 1 (4-layer student): layers -> (params in M, size in MB).
PAPER_TABLE2: dict[int, tuple[float, float]] = {24: (317, 1262), 12: (166, 665), 10: (141, 564), 8: (115, 464),
                                                6: (91, 363), 4: (65, 262)}

# wav2vec 2.0 pre-training settings needed to size its pre-training-only modules: final_dim per hidden size
# (large: 768, base: 256), 2 codebook groups x 320 entries, codevector dim = final_dim.
_FINAL_DIM = {1024: 768, 768: 256}


@dataclass(frozen=True)
class ModelInfo:
    """What ``footprint model info`` reports for one model or architecture."""

    params: int
    size_mb: float                   # params x 4 / 1e6 (fp32, the paper's MB)
    transformer_layers: int
    conv_layers: int
    hidden_size: int
    conv_flops_per_s: float          # FLOPs (= 2 x MACs) per second of audio, conv front end
    transformer_flops_per_s: float   # FLOPs per second of audio, everything after the conv front end
    utterance_s: float               # utterance length the attention-score FLOPs assume
    flops_detail: dict[str, float] = field(default_factory=dict)  # per-part FLOPs per second of audio
    pretraining_module_params: int | None = None  # quantizer + project_q + final_proj, if known for this width
    size_on_disk_mb: float | None = None
    source: str = ""

    @property
    def total_flops_per_s(self) -> float:
        return self.conv_flops_per_s + self.transformer_flops_per_s

    @property
    def transformer_fraction(self) -> float:
        total = self.total_flops_per_s
        return self.transformer_flops_per_s / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(total_flops_per_s=self.total_flops_per_s, transformer_fraction=self.transformer_fraction,
                 flops_unit="FLOPs = 2 x MACs per second of audio")
        return d


def fp32_mb(params: int) -> float:
    """The paper's size: parameters x 4 bytes, in decimal MB."""
    return params * 4 / 1e6


def pretraining_module_params(conv_dim: int, hidden: int, final_dim: int, groups: int = 2,
                              num_vars: int = 320) -> int:
    """Parameters of wav2vec 2.0's pre-training-only modules (fairseq names): quantizer, project_q, final_proj.

    quantizer = weight_proj Linear(conv_dim, groups*num_vars) + codebook (groups*num_vars, final_dim/groups);
    project_q = Linear(final_dim, final_dim); final_proj = Linear(hidden, final_dim).  Large: 1,951,872.
    """
    quantizer = conv_dim * groups * num_vars + groups * num_vars + groups * num_vars * (final_dim // groups)
    project_q = final_dim * final_dim + final_dim
    final_proj = hidden * final_dim + final_dim
    return quantizer + project_q + final_proj


def _conv_out_len(length: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1) -> int:
    return max(0, math.floor((length + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1)


def _as_int(v: Any) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def _linear_macs(module: Any, frames: int) -> int:
    """MACs of every Linear-like submodule (anything with in_features/out_features) for ``frames`` frames."""
    total = 0
    for m in module.modules():
        fin, fout = getattr(m, "in_features", None), getattr(m, "out_features", None)
        if isinstance(fin, int) and isinstance(fout, int):
            total += frames * fin * fout
    return total


def _meta_model(config: Any) -> Any:
    import torch
    from transformers import Wav2Vec2ForCTC

    with torch.device("meta"):  # shapes only: no memory, no random init cost
        return Wav2Vec2ForCTC(config)


def model_info(model_or_config: Any, utterance_s: float = MEAN_UTTERANCE_S, source: str = "") -> ModelInfo:
    """Size and FLOPs of a ``Wav2Vec2ForCTC`` (or anything with ``.wav2vec2``) or of a bare ``Wav2Vec2Config``."""
    import torch

    model = model_or_config if isinstance(model_or_config, torch.nn.Module) else _meta_model(model_or_config)
    w2v = getattr(model, "wav2vec2", model)
    params = sum(p.numel() for p in model.parameters())

    samples = int(round(utterance_s * SAMPLE_RATE))
    length, conv_macs, conv_layers, last_channels = samples, 0, 0, 1
    for block in w2v.feature_extractor.conv_layers:
        # A block is a conv layer (HF wraps the Conv1d) or a replacement such as max-pooling (Table 3).
        conv = next((m for m in block.modules() if isinstance(m, torch.nn.Conv1d)), None)
        if conv is not None:
            k, s = _as_int(conv.kernel_size), _as_int(conv.stride)
            length = _conv_out_len(length, k, s, _as_int(conv.padding), _as_int(conv.dilation))
            conv_macs += length * conv.out_channels * (conv.in_channels // conv.groups) * k
            conv_layers += 1
            last_channels = conv.out_channels
            continue
        pool = next((m for m in block.modules() if isinstance(m, (torch.nn.MaxPool1d, torch.nn.AvgPool1d))), None)
        if pool is not None:
            length = _conv_out_len(length, _as_int(pool.kernel_size), _as_int(pool.stride or pool.kernel_size),
                                   _as_int(pool.padding))
    frames = length

    detail: dict[str, int] = {"conv_front_end": conv_macs}
    detail["feature_projection"] = _linear_macs(w2v.feature_projection, frames)
    pos = getattr(w2v.encoder, "pos_conv_embed", None)
    pos_conv = next((m for m in pos.modules() if isinstance(m, torch.nn.Conv1d)), None) if pos is not None else None
    detail["positional_conv"] = (frames * pos_conv.out_channels * (pos_conv.in_channels // pos_conv.groups)
                                 * _as_int(pos_conv.kernel_size)) if pos_conv is not None else 0
    proj = scores = 0
    layers = list(w2v.encoder.layers)
    for layer in layers:
        proj += _linear_macs(layer, frames)
        q = getattr(getattr(layer, "attention", None), "q_proj", None)
        width = getattr(q, "out_features", None) or model.config.hidden_size
        scores += 2 * frames * frames * width  # QK^T and attention x V over all heads
    detail["layer_projections_ffn"] = proj
    detail["attention_scores"] = scores
    head = getattr(model, "lm_head", None)
    detail["ctc_head"] = _linear_macs(head, frames) if head is not None else 0

    per_s = {k: 2.0 * v / utterance_s for k, v in detail.items()}  # FLOPs = 2 x MACs, per second of audio
    conv_flops = per_s["conv_front_end"]
    transformer_flops = sum(v for k, v in per_s.items() if k != "conv_front_end")

    hidden = int(model.config.hidden_size)
    final_dim = _FINAL_DIM.get(hidden)
    pre = pretraining_module_params(last_channels, hidden, final_dim) if final_dim else None
    return ModelInfo(params=params, size_mb=fp32_mb(params), transformer_layers=len(layers),
                     conv_layers=conv_layers, hidden_size=hidden, conv_flops_per_s=conv_flops,
                     transformer_flops_per_s=transformer_flops, utterance_s=utterance_s, flops_detail=per_s,
                     pretraining_module_params=pre, source=source)
