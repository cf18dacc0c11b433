"""The paper's Table 3 variant: 4 conv layers, the other 3 replaced by max-pooling at the same kernel and stride.

wav2vec 2.0's front end is 7 conv layers, kernels (10, 3, 3, 3, 3, 2, 2), strides (5, 2, 2, 2, 2, 2, 2): 320
samples (20 ms) per output frame.  ``MaxPool1d(k, s)`` without padding has the same output length as an
unpadded ``Conv1d(k, s)``, floor((L - k) / s) + 1, so replacing conv layer i by a max-pool of kernel k_i and
stride s_i keeps every frame count - and ``_get_feat_extract_output_lengths`` and the attention masks, which
are computed from ``config.conv_kernel`` / ``config.conv_stride`` - exactly as they were.

Which layers go: the *last* ``7 - conv_layers`` (for 4 kept: layers 4, 5, 6).  Max-pooling cannot change the
channel count, so a replaced layer must map C -> C; the last layers are the only ones guaranteed to (the
embedded teacher widens 64 -> 96 -> 128 in layers 0-3 and stays at 128 after; the large model is 512
throughout).  Layer 0 (kernel 10, stride 5 on the raw waveform) is the learned filterbank and must stay a conv.
The kept layers 0-3, the feature projection and everything after come from the teacher unchanged; the model
must then be trained by distillation (``footprint compress distill --student-arch maxpool-conv4``) before its
WER means anything.

Saved with the ``tensors`` storage: ``config.json`` carries ``maxpool_layers`` and the loader rebuilds the
structure from it (no pickled code); a plain ``from_pretrained`` refuses the directory (no model.safetensors).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import FootprintError
from compress.methods.registry import register_method

log = logging.getLogger(__name__)


@dataclass
class MaxPoolConfig:
    conv_layers: int = 4  # conv layers kept; the others (the last ones) become max-pooling


class MaxPoolFeatureLayer(nn.Module):
    """Stands in for a conv block of the feature encoder: max-pooling with that block's kernel and stride.

    It wraps an ``nn.MaxPool1d`` so FLOP counters (``core/model_info.py``) follow the frame count.
    """

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool1d(kernel_size=kernel, stride=stride)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.pool(hidden_states)


def layers_to_replace(config, conv_layers: int) -> list[int]:
    n = len(config.conv_dim)
    if not 1 <= conv_layers <= n:
        raise FootprintError(f"maxpool: --conv-layers must be between 1 and {n}, got {conv_layers}")
    replace = list(range(conv_layers, n))
    for i in replace:
        if config.conv_dim[i - 1] != config.conv_dim[i]:
            raise FootprintError(
                f"maxpool: conv layer {i} maps {config.conv_dim[i - 1]} -> {config.conv_dim[i]} channels; "
                f"max-pooling keeps channels, so keep at least {i + 1} conv layers")
    return replace


def replace_with_maxpool(model: nn.Module, indices: list[int]) -> nn.Module:
    """Swap the conv blocks at ``indices`` for max-pooling in place; records ``config.maxpool_layers``."""
    cfg = model.config
    convs = model.wav2vec2.feature_extractor.conv_layers
    for i in indices:
        convs[i] = MaxPoolFeatureLayer(int(cfg.conv_kernel[i]), int(cfg.conv_stride[i]))
    cfg.maxpool_layers = sorted(int(i) for i in indices)
    return model


@register_method("maxpool-conv{c}-untrained", MaxPoolConfig, options=lambda name, c: {"conv_layers": int(c["c"])},
                 description="the max-pool structure applied, untrained: timing and FLOPs only")
def apply_maxpool(model: nn.Module, config: MaxPoolConfig) -> nn.Module:
    """Replace the last ``7 - conv_layers`` conv layers by max-pooling; the kept ones keep the model's weights."""
    if getattr(model.config, "maxpool_layers", None):
        raise FootprintError("maxpool: the model already has max-pooling layers "
                             f"{model.config.maxpool_layers}")
    replace = layers_to_replace(model.config, config.conv_layers)
    replace_with_maxpool(model, replace)
    log.info("maxpool: conv layers %s replaced by max-pooling (kernel, stride) %s; kept conv layers %s",
             replace, [(model.config.conv_kernel[i], model.config.conv_stride[i]) for i in replace],
             [i for i in range(len(model.config.conv_dim)) if i not in replace])
    return model
