"""Structured pruning: whole attention heads, feed-forward neurons and front-end conv channels removed, so the
matrices that remain are dense and smaller (real speed on any device, unlike the unstructured sparsity of
``prune-sensitivity``), then knowledge distillation from the source model to recover.

``footprint compress prune-structured --model embedded --flops-keep 0.5 --out DIR`` (``footprint/commands``):

1. importance (``importance.py``): activation x weight-norm contribution of every head, neuron and conv channel
   over calibration utterances of the training subset (forward passes only);
2. plan (``plan.py``): heads and neurons go in order of importance per multiply-accumulate until the transformer
   FLOPs (``core.model_info``) are ``flops_keep`` of the source's; ``conv_keep`` of the channels of the first
   conv layers stay (they dominate the front end's time on CPU);
3. surgery (``surgery.py``): the weights are cut; the config records ``conv_dim`` and per-layer
   ``layer_num_heads`` / ``layer_intermediate_size``, from which the suite's loader rebuilds the structure;
4. recovery (``run.py``): the suite's distillation (eq. 1 KD loss + feature penalty) from the source model, started
   from the pruned one, with every option of ``footprint compress distill``.

The trained result is a recipe like the students: ``prune-structured-{p}`` (p = percent of the transformer FLOPs
kept) is looked up under the students directory (``compress.methods.students``) and chains like them:
``prune-structured-50+int8-dynamic``.
"""
from compress.methods.prune_structured.config import PrunePlan, StructuredPruneConfig
from compress.methods.prune_structured.importance import Importance, measure_importance
from compress.methods.prune_structured.plan import plan_pruning
from compress.methods.prune_structured.surgery import apply_plan, has_pruned_structure, shrink_to_config

__all__ = ["Importance", "PrunePlan", "StructuredPruneConfig", "apply_plan", "has_pruned_structure",
           "measure_importance", "plan_pruning", "shrink_to_config"]
