"""``int8-inductor``'s compiled encoder as an AOTInductor artefact (:mod:`compress.methods.aoti`): built once per
graph and machine, loaded by every later build, in this process or another.

What an artefact holds: ``encoder.pt2``, the quantized graph exported with dynamic batch and length and compiled by
AOTInductor with weight freezing (so oneDNN's int8 GEMMs with prepacked weights, as ``torch.compile`` with freezing
gives; the ``-bf16`` forms' autocast is traced into it); ``graph.safetensors``, the quantized graph's own tensors
(int8 weights, scales, the fp32 rest), which the encoder keeps as its state for size and memory accounting; and in
``meta.json`` the graph's description (:func:`compress.methods.int8_inductor.describe_graph`).  Loading it skips
export, quantization and compilation.  Its key covers the encoder's tensors and configuration and the method's
options (for the static forms, the calibration options too: an artefact calibrated on other audio is another one).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.methods import aoti

log = logging.getLogger(__name__)

# the code that shapes the quantized graph: a change to it is another artefact
SOURCES = ("compress.methods.int8_inductor", "compress.methods.int8_artefact", "compress.methods.aoti",
           "compress.methods.attention", "compress.methods.positional_conv")
TENSORS = "graph.safetensors"
CALIBRATION_FIELDS = ("calibration_data", "calibration_utterances", "calibration_seed", "eval_data", "do_normalize")


class GraphTensors(nn.Module):
    """A loaded artefact's quantized graph without its code: its parameters and buffers under the same names."""

    def __init__(self, tensors: dict[str, torch.Tensor], parameters: set[str]) -> None:
        super().__init__()
        for name, t in tensors.items():
            owner: nn.Module = self
            *path, leaf = name.split(".")
            for part in path:
                if not hasattr(owner, part):
                    owner.add_module(part, nn.Module())
                owner = getattr(owner, part)
            if name in parameters:
                owner.register_parameter(leaf, nn.Parameter(t, requires_grad=False))
            else:
                owner.register_buffer(leaf, t)


class _UnderAutocast(nn.Module):
    """What AOTInductor compiles: the graph, under bf16 autocast for the ``-bf16`` forms, fp32 out."""

    def __init__(self, graph: nn.Module, mixed_bf16: bool) -> None:
        super().__init__()
        self.quantized = graph  # not "graph": the exported program's attribute paths would clash with GraphModule's
        self.mixed_bf16 = mixed_bf16

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.mixed_bf16):
            return self.quantized(*args).float()


def key_for(encoder: nn.Module, model_config: Any, config: Any, with_mask: bool) -> tuple[str, dict[str, Any]]:
    options = dataclasses.asdict(config)
    if config.dynamic:  # no calibration: the evaluated set and calibration options do not change the graph
        for field in CALIBRATION_FIELDS:
            options.pop(field, None)
    arch = {k: v for k, v in model_config.to_dict().items() if k not in ("_name_or_path", "architectures")}
    graph = {"encoder": aoti.tensors_digest(encoder), "arch": arch, "options": options, "with_mask": with_mask}
    return aoti.artefact_key(graph, SOURCES)


def build(key: str, parts: dict[str, Any], graph: torch.fx.GraphModule, described: dict[str, Any],
          example: tuple[torch.Tensor, ...], shapes: tuple[dict[int, Any], ...], mixed_bf16: bool,
          calibration_data: str = "") -> Path:
    """Export the quantized ``graph`` again (dynamic batch and length) and compile it into a new artefact."""
    from safetensors.torch import save_file

    with torch.no_grad():
        exported = torch.export.export(_UnderAutocast(graph, mixed_bf16), example, dynamic_shapes=(shapes,),
                                       strict=False)

    def write_tensors(folder: Path) -> dict[str, Any]:
        state = {k: v.detach().contiguous().clone() for k, v in graph.state_dict().items()}
        save_file(state, str(folder / TENSORS))
        return {"described": described, "parameters": sorted(n for n, _ in graph.named_parameters()),
                "calibration_data": calibration_data}

    # freezing: weights become constants, and oneDNN's int8 GEMM (qlinear) with prepacked weights replaces the
    # dequantize -> linear pattern (without it the graph runs fp32 matmuls)
    return aoti.build(key, parts, exported, {"freezing": True}, write_tensors)


def load(folder: Path, parts: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any], dict[str, Any]]:
    """(the graph's tensors, the compiled encoder, the graph's description, meta.json); :class:`aoti.ArtefactError`
    where anything is missing, unreadable or from another build."""
    meta = aoti.read_meta(folder, parts)
    try:
        from safetensors.torch import load_file

        tensors = load_file(str(folder / TENSORS))
        described = meta["described"]
        parameters = set(meta["parameters"])
        json.dumps(described)
    except Exception as exc:  # noqa: BLE001 - a damaged artefact is built again
        raise aoti.ArtefactError(f"{folder / TENSORS}: unreadable ({type(exc).__name__}: {exc})") from exc
    t0 = time.perf_counter()
    compiled = aoti.load_package(folder)
    meta["load_package_s"] = time.perf_counter() - t0
    return GraphTensors(tensors, parameters), compiled, described, meta
