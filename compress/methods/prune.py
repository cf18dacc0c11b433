"""Distiller's sensitivity pruner: per layer, weights with |w| <= sensitivity x std(layer weights) are zeroed.

The paper (section 2.2), for the 24-layer model: sensitivity 0.1 for every convolution layer, 0.3 for transformer
layers 3-16 and 0.4 for layers 17-23; layers 0-2 are not in its schedule, so they are **not pruned** (Distiller
prunes only the parameters a schedule names).  It reports 23 % sparsity at unchanged WER and no speed-up.

Other depths: transformer layer i of an L-layer model is treated as layer i x 24 / L of the 24-layer schedule
(12 layers: 0-1 dense, 2-8 at 0.3, 9-11 at 0.4; 4 layers: 0 dense, 1-2 at 0.3, 3 at 0.4).

What is pruned: the weight matrices of each transformer layer (attention q/k/v/out projections, both feed-forward
Linears) and the weights of the conv layers - the 7 feature-extractor convs and the positional conv.  Biases,
layer norms, the feature projection and the CTC head are left dense, as a Distiller schedule naming layer
weights would.  The positional conv is weight-normed (a parametrization computing g * v / ||v||): its
parametrization is removed first (so the pruned tensor is the effective weight), and put back afterwards with
v = the pruned weight and g = its norm, which reproduces the pruned weight and keeps the variant loadable by
any Hugging Face code.

Implemented as a ``torch.nn.utils.prune.BasePruningMethod`` (:class:`SensitivityPruning`), made permanent with
``prune.remove``.  The pruned model is dense in memory - PyTorch has no fast unstructured-sparse kernels here -
so speed is expected unchanged (the benchmark measures it); ``sparse_storage`` stores pruned tensors as a
bitmask plus the non-zero values so the size on disk reflects the sparsity.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from compress.methods.registry import register_method

log = logging.getLogger(__name__)


class SensitivityPruning(prune.BasePruningMethod):
    """Unstructured: keep |w| > sensitivity x std(w) (Distiller's ``SensitivityPruner``)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, sensitivity: float) -> None:
        self.sensitivity = float(sensitivity)

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        threshold = self.sensitivity * t.float().std()
        return default_mask * (t.abs() > threshold).to(default_mask.dtype)

    @classmethod
    def apply(cls, module: nn.Module, name: str, sensitivity: float):
        return super().apply(module, name, sensitivity=sensitivity)


@dataclass
class PruneConfig:
    conv_sensitivity: float = 0.1
    # The paper's 24-layer schedule: (first layer, sensitivity) - layers before the first entry stay dense.
    transformer_schedule: tuple[tuple[int, float], ...] = ((3, 0.3), (17, 0.4))
    reference_layers: int = 24
    prune_pos_conv: bool = True
    sparse_storage: bool = False
    overrides: dict[str, float] = field(default_factory=dict)  # exact "module name" -> sensitivity


def transformer_sensitivity(layer: int, n_layers: int, config: PruneConfig) -> float:
    """Sensitivity of transformer layer ``layer`` of ``n_layers`` under the proportionally mapped schedule."""
    pos = layer * config.reference_layers / n_layers
    sens = 0.0
    for start, s in sorted(config.transformer_schedule):
        if pos >= start:
            sens = s
    return sens


def prune_plan(model: nn.Module, config: PruneConfig) -> dict[str, float]:
    """module name -> sensitivity for every module whose ``weight`` is pruned (0 = left dense)."""
    w2v = model.wav2vec2
    plan: dict[str, float] = {}
    for i, block in enumerate(w2v.feature_extractor.conv_layers):
        if hasattr(block, "conv"):  # max-pool stand-ins have no weights
            plan[f"wav2vec2.feature_extractor.conv_layers.{i}.conv"] = config.conv_sensitivity
    if config.prune_pos_conv:
        plan["wav2vec2.encoder.pos_conv_embed.conv"] = config.conv_sensitivity
    n = len(w2v.encoder.layers)
    for i, layer in enumerate(w2v.encoder.layers):
        s = transformer_sensitivity(i, n, config)
        for name, m in layer.named_modules():
            if isinstance(m, nn.Linear):
                plan[f"wav2vec2.encoder.layers.{i}.{name}"] = s
    for name, s in config.overrides.items():
        plan[name] = float(s)
    return plan


def _unparametrize(conv: nn.Module) -> bool:
    """Fold a weight-norm parametrization into a plain weight; True if there was one."""
    if parametrize.is_parametrized(conv, "weight"):
        parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
        if not isinstance(conv.weight, nn.Parameter):  # under no_grad torch leaves a plain tensor
            w = conv.weight.detach().clone()
            del conv.weight
            conv.weight = nn.Parameter(w)
        return True
    if hasattr(conv, "weight_g"):  # the legacy torch.nn.utils.weight_norm hook
        torch.nn.utils.remove_weight_norm(conv)
        return True
    return False


def _reparametrize(conv: nn.Module) -> None:
    # HF builds the positional conv with weight_norm(dim=2); g = ||w|| and v = w reproduce w exactly
    # (up to rounding; zeros stay zero).
    torch.nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)


@register_method("prune-sensitivity", PruneConfig,
                 description="Distiller's sensitivity pruner with the paper's schedule")
def apply_prune(model: nn.Module, config: PruneConfig) -> nn.Module:
    from compress.methods.quantize import _reject_quantized

    _reject_quantized(model, "prune-sensitivity")
    plan = prune_plan(model, config)
    detail: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        for name, sens in plan.items():
            module = model.get_submodule(name)
            if sens <= 0:
                w = module.weight
                detail[name] = {"sensitivity": 0.0, "sparsity": float((w == 0).float().mean()),
                                "numel": w.numel()}
                continue
            had_wn = _unparametrize(module)
            SensitivityPruning.apply(module, "weight", sensitivity=sens)
            prune.remove(module, "weight")  # make permanent: weight = weight_orig * mask
            w = module.weight
            detail[name] = {"sensitivity": sens, "sparsity": float((w == 0).float().mean()), "numel": w.numel()}
            if had_wn:
                _reparametrize(module)
    zeros = sum(d["sparsity"] * d["numel"] for d in detail.values() if d["sensitivity"] > 0)
    pruned = sum(d["numel"] for d in detail.values() if d["sensitivity"] > 0)
    model.pruning_report = {  # read by the CLI / save_variant
        "per_layer": {k: round(v["sparsity"], 6) for k, v in detail.items()},
        "sensitivity": {k: v["sensitivity"] for k, v in detail.items()},
        "pruned_tensors_sparsity": round(zeros / pruned, 6) if pruned else 0.0,
        "pruned_tensors_params": int(pruned),
    }
    log.info("prune-sensitivity: %d tensors pruned, %.1f%% of their weights zeroed", len(
        [d for d in detail.values() if d["sensitivity"] > 0]), 100 * model.pruning_report["pruned_tensors_sparsity"])
    return model
