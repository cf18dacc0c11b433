"""``footprint compress prune-structured``: score, plan and cut the source model, then recover by distillation
from it (the suite's distillation, started from the pruned model).  Rerun after a kill: the pruned model in
OUT/.work/pruned is reused and the distillation resumes from its checkpoint."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from compress.methods.distill import DistillConfig, DistillResult, distill
from compress.methods.distill.data import subset_dir
from compress.methods.prune_structured.config import StructuredPruneConfig
from compress.methods.prune_structured.importance import measure_importance
from compress.methods.prune_structured.plan import plan_pruning
from compress.methods.prune_structured.surgery import apply_plan
from core.model_info import model_info
from core.errors import FootprintError

log = logging.getLogger("compress.methods.prune_structured")


def recipe_name(cfg: StructuredPruneConfig) -> str:
    return f"prune-structured-{round(100 * cfg.flops_keep)}"


def calibration_audio(distill_cfg: DistillConfig, n: int, seed: int) -> list[np.ndarray]:
    """``n`` utterances drawn (seeded) from the training subset: never the reported dev/test sets.  The one
    chooser every calibrating recipe uses (:mod:`compress.methods.calibration`)."""
    from compress.methods.calibration import choose_calibration_audio

    return choose_calibration_audio(str(subset_dir(distill_cfg.data, distill_cfg.hours_train)), n, seed,
                                    max_seconds=distill_cfg.max_utterance_seconds)


def prune_model(prune_cfg: StructuredPruneConfig, distill_cfg: DistillConfig, out: Path) -> dict:
    """Cut the source model and save it (untrained) to ``out``; returns the plan's summary."""
    from compress.methods.storage import save_variant, source_info
    from compress.variants import load_variant

    source = load_variant(distill_cfg.teacher, device="cpu")
    model = source.model.float().eval()
    n_conv = len(model.wav2vec2.feature_extractor.conv_layers)
    problem = conv_layers_problem(prune_cfg.conv_layers, n_conv) if prune_cfg.conv_keep < 1 else None
    if problem:  # a recipe spec is only known once built; a directory was checked by the CLI already
        raise FootprintError(f"--conv-layers {','.join(map(str, prune_cfg.conv_layers))}: {problem}")
    audios = calibration_audio(distill_cfg, prune_cfg.calibration_utterances, prune_cfg.seed)
    imp = measure_importance(model, audios, source.do_normalize, prune_cfg.conv_layers if prune_cfg.conv_keep < 1
                             else ())
    plan = plan_pruning(model, imp, prune_cfg)
    apply_plan(model, plan)
    after = model_info(model)
    summary = {**plan.summary(), "transformer_flops_after": after.transformer_flops_per_s,
               "conv_flops_after": after.conv_flops_per_s, "calibration_frames": imp.frames,
               "criterion": "activation x weight norm, residual-normalised (importance.py)",
               "settings": asdict(prune_cfg)}
    log.info("pruned: heads per layer %s, feed-forward %s, conv channels %s; transformer FLOPs %.3g -> %.3g "
             "per s of audio (target %.3g)", summary["heads_per_layer"], summary["ffn_per_layer"],
             summary["conv_channels"], plan.transformer_flops_before, after.transformer_flops_per_s,
             plan.transformer_flops_target)
    src_dir = Path(source.path) if source.path else None
    save_variant(model, out, recipe=f"{recipe_name(prune_cfg)}-untrained",
                 stages=[{"name": "prune-structured", "config": asdict(prune_cfg)}], do_normalize=source.do_normalize,
                 source=source_info(distill_cfg.teacher, src_dir), extra={"structured_pruning": summary},
                 trained=False)
    return summary


def prune_structured(prune_cfg: StructuredPruneConfig, distill_cfg: DistillConfig) -> DistillResult:
    """Prune, then distil from the source model into the pruned one; the result is a trained variant in
    ``distill_cfg.out_dir`` whose variant.json carries the plan (``structured_pruning``)."""
    from compress.methods.distill.train import WORK
    from compress.methods.storage import read_variant_json

    prune_cfg.validate()
    out = Path(distill_cfg.out_dir)
    pruned = out / WORK / "pruned"
    if not read_variant_json(out).get("training", {}).get("finished"):
        summary = read_variant_json(pruned).get("structured_pruning")
        if summary is None or summary.get("settings") != json.loads(json.dumps(asdict(prune_cfg))):
            summary = prune_model(prune_cfg, distill_cfg, pruned)
        else:
            log.info("reusing the pruned model in %s", pruned)
        distill_cfg = replace(distill_cfg, init_from=str(pruned), layers=None, recipe=recipe_name(prune_cfg),
                              record={"structured_pruning": summary})
    return distill(distill_cfg)


def conv_layers_problem(conv_layers: tuple[int, ...], n_conv: int) -> str | None:
    """What is wrong with ``--conv-layers`` for a front end of ``n_conv`` conv layers (None: nothing): a thinned
    layer's output channels are the next conv's input, so the last layer cannot be thinned."""
    bad = [i for i in conv_layers if not 0 <= i < n_conv - 1]
    if bad:
        return (f"conv layer {bad[0]} is out of range: the model has {n_conv} conv layers, of which 0 to "
                f"{n_conv - 2} can be thinned (each must feed another)")
    return None
