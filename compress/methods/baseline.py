"""``baseline``: the model as it is (the reference every variant is compared with)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compress.methods.registry import register_method


@dataclass
class BaselineConfig:
    pass


@register_method("baseline", BaselineConfig, description="the model as it is")
def apply_baseline(model: Any, config: BaselineConfig) -> Any:
    return model
