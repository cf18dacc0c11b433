"""``front-end-compiled``'s window groups as an AOTInductor artefact (:mod:`compress.methods.aoti`): the windowed
bf16 front end of ``front-end-bf16`` with each block's LayerNorm and GELU fused into one generated kernel.

Why: in the eager windowed front end, LayerNorm and GELU are two ATen calls per block over every activation (half
of the front end's time on a 2-vCPU AVX512-BF16 EPYC: for a batch of 8 x 5 s, convolutions 22 ms, LayerNorm 14,
GELU 12).  Inductor fuses LayerNorm, GELU and the casts into one pass per block and calls oneDNN's convolutions
with the bias fused.  The windows give every call one of a few shapes whatever the utterance lengths, so one graph,
exported with a dynamic window count (1 to the group size) and compiled ahead of time, serves every length: no
kernel is built on lengths never seen.

Numerics: each convolution runs in bf16 (as ``front-end-bf16``); the LayerNorm and the activation run in fp32 on its
output and are rounded to bf16 once, where the eager path rounds after each.  Compiled without weight freezing:
with frozen weights and a dynamic window count, torch 2.13's AOTInductor returned wrong features (relative error
about 1 against the eager front end; static shapes were right), and freezing gained nothing measurable here.
``tests/test_methods_front_end.py`` compares the artefact with the eager front end.

The key covers the front end's tensors, its plan (conv, norm and pool per block), the window geometry, the dtype,
the library versions, the CPU's instruction set and the thread count (:func:`compress.methods.aoti.machine_key`).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from compress.methods import aoti

log = logging.getLogger(__name__)

NAME = "front-end-compiled"
# the code that shapes the exported graph: a change to it is another artefact
SOURCES = ("compress.methods.front_end_artefact", "compress.methods.aoti")


class WindowBlocks(nn.Module):
    """What is exported: the front end's blocks over a group of windows, ``(windows, samples)`` fp32 in,
    ``(windows, channels, frames)`` fp32 out; the convolutions channels-last in ``dtype``, each LayerNorm and
    activation in fp32 on the convolution's output (one rounding to ``dtype`` per block)."""

    def __init__(self, conv_layers: nn.ModuleList, plan: list[tuple[str, str]], dtype: torch.dtype) -> None:
        super().__init__()
        self.plan = [tuple(p) for p in plan]
        self.dtype = dtype
        self.steps: list[tuple[int, int]] = []  # (kernel, stride) per block
        self.eps: list[float] = []
        self.activations = nn.ModuleList()
        for i, (block, (kind, norm)) in enumerate(zip(conv_layers, plan)):
            if kind == "pool":
                self.steps.append((block.pool.kernel_size, block.pool.stride))
                self.eps.append(0.0)
                self.activations.append(nn.Identity())
                continue
            conv = block.conv
            weight = conv.weight.detach()[:, :, None, :].to(dtype).contiguous(memory_format=torch.channels_last)
            self.register_buffer(f"weight{i}", weight)
            self.register_buffer(f"bias{i}", conv.bias.detach().to(dtype) if conv.bias is not None else None)
            self.steps.append((conv.kernel_size[0], conv.stride[0]))
            self.eps.append(block.layer_norm.eps if norm == "layer" else 0.0)
            if norm == "layer":
                self.register_buffer(f"norm_weight{i}", block.layer_norm.weight.detach().float().clone())
                self.register_buffer(f"norm_bias{i}", block.layer_norm.bias.detach().float().clone())
            self.activations.append(block.activation)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = windows[:, None, None, :].to(self.dtype).contiguous(memory_format=torch.channels_last)
        for i, ((kind, norm), (kernel, stride), eps, act) in enumerate(zip(self.plan, self.steps, self.eps,
                                                                           self.activations)):
            if kind == "pool":
                x = F.max_pool2d(x, (1, kernel), (1, stride))
                continue
            x = F.conv2d(x, getattr(self, f"weight{i}"), getattr(self, f"bias{i}"), (1, stride))
            if norm == "layer":  # over channels: the last dimension of the channels-last memory
                weight = getattr(self, f"norm_weight{i}")
                x = F.layer_norm(x.permute(0, 2, 3, 1).float(), weight.shape, weight, getattr(self, f"norm_bias{i}"),
                                 eps)
                x = act(x).to(self.dtype).permute(0, 3, 1, 2)
            else:
                x = act(x)
        return x[:, :, 0, :].float()


def key_for(encoder: nn.Module, plan: list[tuple[str, str]], dtype: torch.dtype, windows: Any
            ) -> tuple[str, dict[str, Any]]:
    graph = {"method": NAME, "tensors": aoti.tensors_digest(encoder.conv_layers), "plan": [list(p) for p in plan],
             "dtype": str(dtype), "windows": [windows.frames, windows.group, windows.field, windows.stride],
             "activations": sorted({type(getattr(b, "activation", None)).__name__ for b in encoder.conv_layers})}
    return aoti.artefact_key(graph, SOURCES)


def build(key: str, parts: dict[str, Any], module: WindowBlocks, windows: Any) -> Path:
    """Export ``module`` with a dynamic window count (1 to the group size) and compile it into a new artefact."""
    example = (torch.zeros(min(3, windows.group), windows.samples),)
    count = torch.export.Dim("windows", min=1, max=max(windows.group, 2))
    with torch.no_grad():
        exported = torch.export.export(module, example, dynamic_shapes=({0: count},), strict=False)
    # no freezing: with frozen weights and a dynamic window count the artefact's features were wrong (module doc)
    return aoti.build(key, parts, exported, {"freezing": False}, lambda folder: {})


def compile_window_blocks(encoder: nn.Module, plan: list[tuple[str, str]], dtype: torch.dtype, windows: Any
                          ) -> tuple[Any, str, str, float]:
    """The window groups' compiled graph, loaded or built here: (the loaded package, "loaded" | "built", the compile
    cache's label, seconds).  Raises what building or loading raised (the caller runs the eager windows instead)."""
    t0 = time.perf_counter()
    key, parts = key_for(encoder, plan, dtype, windows)
    loaded = aoti.load_or_build(key, parts, lambda: build(key, parts, WindowBlocks(encoder.conv_layers, plan, dtype)
                                                          .eval(), windows), NAME)
    if loaded.state == "built":
        log.info("%s: window groups compiled in %.1f s (%s)", NAME, loaded.build_s, loaded.folder)
    return loaded.package, loaded.state, loaded.cache_label, time.perf_counter() - t0
