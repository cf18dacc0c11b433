"""``compile-encoder``'s compiled transformer as an AOTInductor artefact (:mod:`compress.methods.aoti`): built once
per encoder and machine, loaded by every later build, in this process or another.

Why: ``torch.compile``'s caches keep what Inductor generated, not Dynamo's trace, so every fresh process (the
runner's memory child, a second run, a deployer's ``load_variant``) traced the encoder again: 30-47 s for the
teacher's 12 layers on a 2-vCPU AMD EPYC with the FX graph cache warm.  An artefact is the encoder exported with
dynamic batch and length and compiled ahead of time; a later build loads it (a ``dlopen`` and a constant copy).
With ``freezing`` (the default) its weights are constants of the graph, so Inductor calls oneDNN's GEMMs with
prepacked weights and the bias and GELU fused into them.  Measured on that EPYC (AVX512-BF16, no AMX; 2 threads;
the bf16 teacher chain ``bf16+front-end-bf16+compile-encoder``, 100 dev-clean utterances, 7 interleaved warm
repeats): x2.05 over the fp32 teacher with frozen weights, x1.72 without, x1.84 by ``torch.compile``, x1.83 eager;
built cold in 25-28 s (``torch.compile``: 41 s), loaded in 0.03 s.

What it holds: ``encoder.pt2``, with the encoder's weights as the package's constants.  The encoder module keeps
its own weights, so its state dict, size and FLOPs accounting are those of the model it was; the weights are
resident twice, and the variant's memory figure includes that copy (the bf16 teacher's encoder: about 11 MB).
The key covers the encoder's tensors, dtype and architecture, whether it takes a padding mask, freezing, the
positional convolution's class (the fp32 guard of :func:`compress.methods.quantize.guard_bf16_grouped_conv`), the
library versions, the CPU's instruction set and the thread count (:func:`compress.methods.aoti.machine_key`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.methods import aoti

log = logging.getLogger(__name__)

# the code that shapes the exported graph: a change to it is another artefact
SOURCES = ("compress.methods.encoder_artefact", "compress.methods.aoti", "compress.methods.quantize",
           "compress.methods.attention", "compress.methods.positional_conv")
NAME = "compile-encoder"


def key_for(encoder: nn.Module, model_config: Any, with_mask: bool, freezing: bool,
            implementation: str = "sdpa") -> tuple[str, dict[str, Any]]:
    arch = {k: v for k, v in model_config.to_dict().items() if k not in ("_name_or_path", "architectures")}
    pos_conv = getattr(getattr(encoder, "pos_conv_embed", None), "conv", None)
    graph = {"encoder": aoti.tensors_digest(encoder), "arch": arch, "with_mask": with_mask, "freezing": freezing,
             "dtype": str(next(encoder.parameters()).dtype), "pos_conv": type(pos_conv).__name__,
             "attention": implementation}
    return aoti.artefact_key({"method": NAME, **graph}, SOURCES)


def build(key: str, parts: dict[str, Any], encoder: nn.Module, model_config: Any, with_mask: bool,
          freezing: bool, implementation: str = "sdpa") -> Path:
    """Export ``encoder`` (dynamic batch and length) with ``implementation``'s attention and compile it into a new
    artefact."""
    example, shapes = aoti.encoder_example(model_config.hidden_size, with_mask, next(encoder.parameters()).dtype)
    exported = aoti.export_encoder(encoder, model_config, example, shapes, implementation)
    return aoti.build(key, parts, exported, {"freezing": freezing}, lambda folder: {})


class ArtefactForward:
    """Mixed into the encoder's class (by ``compiled.py``): its forward calls the loaded artefact instead of the
    layers."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False, return_dict: bool = True) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        from core.errors import FootprintError

        if output_attentions or output_hidden_states:
            raise FootprintError(f"{NAME}: the compiled encoder returns the last hidden state only")
        out = aoti.call_encoder(self._footprint_aoti, hidden_states, attention_mask, self._footprint_aoti_mask, NAME)
        return BaseModelOutput(last_hidden_state=out) if return_dict else (out,)


def compile_encoder(model: nn.Module, encoder: nn.Module, with_mask: bool, freezing: bool,
                    implementation: str = "sdpa") -> tuple[Any, str, str]:
    """The encoder's artefact, loaded or built here: (the loaded package, "loaded" | "built", the compile cache's
    label); its folder in ``encoder.artefact``.  Raises what building or loading raised (the caller compiles with
    ``torch.compile`` instead)."""
    key, parts = key_for(encoder, model.config, with_mask, freezing, implementation)
    loaded = aoti.load_or_build(key, parts, lambda: build(key, parts, encoder, model.config, with_mask, freezing,
                                                          implementation), NAME)
    if loaded.state == "built":
        model._footprint_artefact_build_s = loaded.build_s
    model._footprint_artefact_load_s = loaded.load_s
    encoder.artefact = loaded.folder
    return loaded.package, loaded.state, loaded.cache_label
