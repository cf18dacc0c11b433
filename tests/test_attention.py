"""The matmul attention the compiled int8 encoders use: ATen's attention with a key-padding mask, up to rounding,
whatever the padded frames hold."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2Config

from compress.methods import attention


def _inputs(pad_scale: float = 1.0) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 7, 8) for _ in range(3))
    keep = torch.ones(3, 7, dtype=torch.long)
    keep[1, 5:] = 0
    keep[2, 2:] = 0
    k = torch.where(keep[:, None, :, None].bool(), k, k * pad_scale)
    return q, k, v, keep


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :].bool()).transpose(1, 2)


@pytest.mark.parametrize("pad_scale", [1.0, 1e4])
def test_equals_sdpa_with_the_padding_mask(pad_scale: float) -> None:
    """pad_scale 1e4: padded keys whose scores dwarf the real ones (a row maximum taken over them would make every
    real frame's exponential underflow to 0, and the row NaN)."""
    q, k, v, keep = _inputs(pad_scale)
    mask = attention.key_padding_keep(3, 7, 7, keep)
    out, weights = attention.matmul_attention(torch.nn.Module(), q, k, v, mask)
    assert weights is None and out.shape == (3, 7, 2, 8)
    assert torch.isfinite(out).all()
    assert float((out - _reference(q, k, v, keep)).abs().max()) < 2e-6  # measured 3.6e-7


def test_without_a_mask_every_key_counts() -> None:
    q, k, v, _ = _inputs()
    out, _ = attention.matmul_attention(torch.nn.Module(), q, k, v, None)
    ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
    assert float((out - ref).abs().max()) < 2e-6


def test_keep_mask_shape_and_dtype() -> None:
    keep = torch.tensor([[1, 1, 0], [1, 1, 1]])
    mask = attention.key_padding_keep(2, 3, 3, keep, dtype=torch.bfloat16)
    assert mask.shape == (2, 1, 1, 3) and mask.dtype == torch.bfloat16
    assert mask[0, 0, 0].tolist() == [1.0, 1.0, 0.0]
    assert attention.key_padding_keep(2, 3, 3, None) is None


def test_exported_with_switches_the_config_and_restores_it() -> None:
    config = Wav2Vec2Config()
    before = config._attn_implementation
    with attention.exported_with(config, "matmul"):
        assert config._attn_implementation == attention.NAME
    assert config._attn_implementation == before
    with attention.exported_with(config, "sdpa"):
        assert config._attn_implementation == before
    with pytest.raises(ValueError, match="attention must be one of"):
        with attention.exported_with(config, "flash"):
            pass


def test_resolve_defaults_to_matmuls_in_bf16_and_refuses_in_one_line() -> None:
    from core.errors import FootprintError

    assert attention.resolve(None, True, "int8-inductor") == "matmul"
    assert attention.resolve(None, False, "int8-inductor") == "sdpa"
    assert attention.resolve("sdpa", True, "compile-encoder") == "sdpa"
    with pytest.raises(FootprintError, match="compile-encoder: attention must be one of sdpa, matmul, not 'flash'"):
        attention.resolve("flash", True, "compile-encoder")
