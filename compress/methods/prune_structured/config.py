"""Settings of structured pruning, and the plan it produces (which heads, neurons and channels stay)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.errors import FootprintError


@dataclass
class StructuredPruneConfig:
    # Share of the source model's *transformer* FLOPs to keep (core.model_info: feature projection, positional
    # conv, layers incl. attention scores, CTC head); heads and feed-forward neurons are removed until it holds.
    flops_keep: float = 0.5
    # Share of channels kept in each of ``conv_layers`` (the front end's first conv layers).  On the embedded
    # teacher on a CPU, conv layers 0-2 (conv + norm + GELU, at the highest frame rates) take about nine tenths of
    # the front end's time and the front end about half the forward pass: it pays to thin them.  1.0 leaves the
    # front end alone.
    conv_keep: float = 0.5
    conv_layers: tuple[int, ...] = (0, 1, 2)
    min_heads: int = 1  # per layer: HF's attention needs at least one head
    min_ffn: int = 16  # per layer: feed-forward neurons never go below this
    calibration_utterances: int = 64  # from the training subset, never the reported test set
    seed: int = 0

    def validate(self) -> None:
        if not 0 < self.flops_keep <= 1:
            raise FootprintError(f"prune-structured: --flops-keep must be in (0, 1], got {self.flops_keep}")
        if not 0 < self.conv_keep <= 1:
            raise FootprintError(f"prune-structured: --conv-keep must be in (0, 1], got {self.conv_keep}")
        if self.min_heads < 1 or self.min_ffn < 1:
            raise FootprintError("prune-structured: --min-heads and --min-ffn must be at least 1")
        if self.calibration_utterances < 1:
            raise FootprintError("prune-structured: --calibration-utterances must be at least 1")


@dataclass
class PrunePlan:
    """What survives: indices into the source model's heads, neurons and conv channels (sorted)."""

    heads: list[list[int]]  # per transformer layer
    ffn: list[list[int]]  # per transformer layer
    conv: dict[int, list[int]] = field(default_factory=dict)  # conv layer -> kept output channels
    transformer_flops_before: float = 0.0  # per second of audio (core.model_info)
    transformer_flops_target: float = 0.0

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["heads_per_layer"] = [len(h) for h in self.heads]
        d["ffn_per_layer"] = [len(f) for f in self.ffn]
        d["conv_channels"] = {str(k): len(v) for k, v in self.conv.items()}
        return d
