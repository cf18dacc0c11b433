"""The student: the initial model's config with fewer transformer layers, every tensor copied from it
(DistilBERT-style layer selection)."""
from __future__ import annotations

import hashlib

import torch
from torch import nn

from compress.methods.distill.config import DistillConfig
from core.errors import FootprintError

LAYER_PREFIX = "wav2vec2.encoder.layers."


def select_layers(n_teacher: int, n_student: int, init: str = "alternate") -> list[int]:
    """Teacher layer indices for the student's layers.

    ``alternate``: floor(i * L / N) - every k-th layer when N divides L (DistilBERT; the paper's 24 -> 12 took
    0, 2, ..., 22), evenly spread otherwise.  ``last``: the last N layers.
    """
    if not 1 <= n_student <= n_teacher:
        raise FootprintError(f"distill: student layers must be between 1 and the teacher's {n_teacher}, "
                             f"got {n_student}")
    if init == "alternate":
        return [i * n_teacher // n_student for i in range(n_student)]
    if init == "last":
        return list(range(n_teacher - n_student, n_teacher))
    raise FootprintError(f"distill: unknown init {init!r} (alternate | last)")


def build_student(source: nn.Module, layers: int | None = None, init: str = "alternate",
                  student_arch: str = "standard", layerdrop: float | None = None,
                  mask_time_prob: float | None = None) -> tuple[nn.Module, list[int]]:
    """The student and the source layers it took; every tensor of the student is copied from ``source``."""
    from compress.methods.storage import build_skeleton

    src_cfg = source.config
    n_src = int(src_cfg.num_hidden_layers)
    layers = n_src if layers is None else int(layers)
    keep = select_layers(n_src, layers, init)
    cfg = src_cfg.__class__.from_dict(src_cfg.to_dict())
    cfg.num_hidden_layers = layers
    from compress.methods.prune_structured.surgery import FFN_KEY, HEADS_KEY

    for key in (HEADS_KEY, FFN_KEY):  # a structurally pruned source: its kept layers keep their sizes
        if getattr(cfg, key, None):
            setattr(cfg, key, [getattr(cfg, key)[i] for i in keep])
    if layerdrop is not None:
        cfg.layerdrop = float(layerdrop)
    if mask_time_prob is not None:
        cfg.mask_time_prob = float(mask_time_prob)
    student = build_skeleton(cfg)
    if student_arch != "standard":
        from compress.methods.maxpool import MaxPoolConfig, apply_maxpool

        try:
            conv = int(student_arch.removeprefix("maxpool-conv"))
        except ValueError:
            raise FootprintError(f"distill: bad --student-arch {student_arch!r} (maxpool-conv<N>)") from None
        if getattr(cfg, "maxpool_layers", None):
            raise FootprintError(f"distill: --student-arch {student_arch}: the initial model already has "
                                 f"max-pooling layers {cfg.maxpool_layers}")
        apply_maxpool(student, MaxPoolConfig(conv_layers=conv))
    src_sd = source.state_dict()
    new_sd: dict[str, torch.Tensor] = {}
    for key in student.state_dict():
        src_key = key
        if key.startswith(LAYER_PREFIX):
            idx, rest = key[len(LAYER_PREFIX):].split(".", 1)
            src_key = f"{LAYER_PREFIX}{keep[int(idx)]}.{rest}"
        if src_key not in src_sd:
            raise FootprintError(f"distill: the initial model has no tensor {src_key} for the student's {key}")
        new_sd[key] = src_sd[src_key].detach().clone().float()
    student.load_state_dict(new_sd, strict=True)
    return student, keep


def load_init_model(cfg: DistillConfig, teacher_model: nn.Module) -> nn.Module:
    if not cfg.init_from:
        return teacher_model
    from compress.methods.quantize import quantized_modules
    from compress.methods.storage import load_variant_dir

    model, _, _ = load_variant_dir(cfg.init_from)
    if quantized_modules(model):
        raise FootprintError(f"{cfg.init_from}: an int8 model cannot be trained; start from a float model")
    return model.float()


def param_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for _, p in sorted(model.state_dict().items()):
        if isinstance(p, torch.Tensor):
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
