"""Attention as two matmuls and a masked softmax, for the encoders Inductor compiles on CPU.

Why: inside a compiled encoder, transformers' default (``sdpa``) calls ATen's CPU flash-attention kernel, which on
a CPU without AMX gains nothing from bf16 at this model's head size (48): on the 2-vCPU AVX512-BF16 EPYC it took as
long as the fp32 kernel and as long as all the encoder's int8 Linears together.  Written as two matmuls and a
softmax, the matmuls go to oneDNN's bf16 GEMMs and Inductor fuses the softmax, the padding mask and the casts.

Exact up to rounding: the padding mask is a multiplicative keep-mask over the keys (1 for a frame, 0 for padding),
applied after the exponential; padded keys first take the first key's values, so the row maximum the softmax
subtracts is always the score of a real frame and the exponentials of the real frames cannot all underflow.  The
softmax is written with ``exp``/``sum``, and divided out after the second matmul: written with ``softmax``,
Inductor's pattern matcher turns the three ops back into the flash-attention kernel.  Dividing late is about 8 %
faster per attention call (batch 8 x 250 frames, bf16, same EPYC, 21 interleaved repeats): the division runs over
head-size columns instead of over every key.

Used by name (:data:`NAME`) while a compiled recipe exports its encoder (:func:`exported_with`); the model itself
keeps its own attention implementation.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

NAME = "footprint_matmul"
IMPLEMENTATIONS = ("sdpa", "matmul")  # a compiled recipe's ``attention`` option


def resolve(requested: str | None, bf16: bool, method: str) -> str:
    """The attention a compiled recipe exports: ``requested``, or by default matmuls where the encoder runs in bf16
    (measured faster there) and ATen's kernel elsewhere; a one-line refusal naming ``method`` for anything else."""
    from core.errors import FootprintError

    chosen = requested or ("matmul" if bf16 else "sdpa")
    if chosen not in IMPLEMENTATIONS:
        raise FootprintError(f"{method}: attention must be one of {', '.join(IMPLEMENTATIONS)}, not {chosen!r}")
    return chosen


def matmul_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: (batch, heads, frames, head size) in, (batch, frames, heads,
    head size) out; ``attention_mask`` is :func:`key_padding_keep`'s (batch, 1, 1, frames) keep-mask."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    if attention_mask is not None:
        key = torch.where(attention_mask.transpose(-1, -2) > 0, key, key[:, :, :1])
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    weights = (scores - scores.amax(-1, keepdim=True)).exp()
    if attention_mask is not None:
        weights = weights * attention_mask
    weights = weights.to(value.dtype)
    # normalised after the second matmul: a division per head-size column, not per key; the sum accumulated in fp32
    out = torch.matmul(weights, value) / weights.sum(-1, keepdim=True, dtype=torch.float32)
    return out.to(value.dtype).transpose(1, 2).contiguous(), None


def key_padding_keep(batch_size: int, q_length: int, kv_length: int, attention_mask: torch.Tensor | None = None,
                     dtype: torch.dtype = torch.float32, **kwargs: Any) -> torch.Tensor | None:
    """transformers' mask-function signature: the (batch, kv) padding mask as a (batch, 1, 1, kv) keep-mask."""
    if attention_mask is None:
        return None
    return attention_mask[:, None, None, :kv_length].to(dtype)


def register() -> None:
    """Makes :data:`NAME` an attention implementation transformers can look up (idempotent)."""
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register(NAME, matmul_attention)
    AttentionMaskInterface.register(NAME, key_padding_keep)


@contextlib.contextmanager
def exported_with(model_config: Any, implementation: str) -> Iterator[None]:
    """While the block runs (an export or a trace), the model's attention is ``implementation``: ``"sdpa"`` as it
    was, ``"matmul"`` this module's; the config is restored afterwards."""
    if implementation == "sdpa":
        yield
        return
    if implementation != "matmul":
        raise ValueError(f"attention must be one of {', '.join(IMPLEMENTATIONS)}, not {implementation!r}")
    register()
    before = model_config._attn_implementation
    model_config._attn_implementation = NAME
    try:
        yield
    finally:
        model_config._attn_implementation = before
