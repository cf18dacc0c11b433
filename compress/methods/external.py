"""The face of ``Wav2Vec2ForCTC`` for a model that another runtime runs (ONNX Runtime, OpenVINO).

:class:`core.inference.Transcriber` and the runner call ``model(input_values, attention_mask=...)`` and read
``.logits``, ``.config`` and ``_get_feat_extract_output_lengths``; ``.to()`` must refuse what the runtime cannot do.
A runtime's wrapper subclasses :class:`ExternalCTCModel` and implements :meth:`run` on numpy feeds.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import FootprintError


class CTCOutput(SimpleNamespace):
    logits: torch.Tensor


class ExternalCTCModel(nn.Module):
    runtime_label = "an external runtime"  # in messages: "an ONNX Runtime variant runs ..."

    def __init__(self, config: Any, input_names: list[str], stats: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.input_names = input_names
        self._stats = stats

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The logits of one batch, as a numpy array the caller may keep."""
        raise NotImplementedError

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **_: Any) -> CTCOutput:
        feeds = {self.input_names[0]: input_values.detach().cpu().float().numpy()}
        if len(self.input_names) > 1:  # a layer-norm model was exported with its mask input
            if attention_mask is None:
                attention_mask = torch.ones(input_values.shape, dtype=torch.long)
            feeds[self.input_names[1]] = attention_mask.detach().cpu().to(torch.int64).numpy()
        return CTCOutput(logits=torch.from_numpy(self.run(feeds)))

    def _get_feat_extract_output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride):
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        return lengths

    def requested_device(self, args: tuple, kwargs: dict[str, Any], where: str) -> torch.device | None:
        """The device a ``.to(...)`` call asks for (None: none); a dtype other than fp32 is refused in one line."""
        device = kwargs.get("device")
        for a in args:
            if isinstance(a, (str, torch.device)):
                device = a
            elif isinstance(a, torch.dtype) and a != torch.float32:
                raise FootprintError(f"{where}: {self.runtime_label} variant runs in its own precision, not {a}")
        return None if device is None else torch.device(device)

    def variant_info(self) -> dict[str, Any]:
        """What ``Variant.info`` reports: the torch model's params/sparsity/layers/FLOPs, the runtime file's sizes."""
        return dict(self._stats)
