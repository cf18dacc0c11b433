"""The distillation loss: KL of eq. (1) over the real frames, the conv feature penalty (CTC is the model's own)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def frame_mask_from_lengths(model: nn.Module, sample_lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, frames) bool: True on the real (non-padding) output frames."""
    n = model._get_feat_extract_output_lengths(sample_lengths).to(torch.long)
    return torch.arange(frames, device=sample_lengths.device)[None, :] < n[:, None]


def kd_loss_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, frame_mask: torch.Tensor,
                  temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over real frames of T^2 KL(teacher || student), number of real frames); computed in fp32."""
    t = temperature
    log_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
    per_frame = (log_t.exp() * (log_t - log_s)).sum(-1)  # KL(T || S) per frame
    m = frame_mask.to(per_frame.dtype)
    return (per_frame * m).sum() * (t * t), m.sum()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, frame_mask: torch.Tensor,
            temperature: float = 1.0) -> torch.Tensor:
    """Eq. (1): mean over real frames of KL(teacher || student) over the vocabulary, times T^2."""
    s, n = kd_loss_terms(student_logits, teacher_logits, frame_mask, temperature)
    return s / n.clamp(min=1)


def feature_penalty_terms(features: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over real frames of mean_c(features^2), frames) for conv features shaped (B, C, T)."""
    per_frame = features.float().pow(2).mean(dim=1)  # (B, T)
    m = frame_mask.to(per_frame.dtype)
    return (per_frame * m).sum(), m.sum()


def feature_penalty(features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    s, n = feature_penalty_terms(features, frame_mask)
    return s / n.clamp(min=1)
