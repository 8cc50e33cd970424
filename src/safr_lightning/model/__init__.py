"""The SAFR transformer classifier (``transformer``), its VMASK layer (``vmask``), its config
(``config``, torch-free) and the fast forward of token subsets that SRS uses (``subset_forward``)."""

from __future__ import annotations

from typing import Any

__all__ = ["ModelOutput", "SAFRTransformer"]


def __getattr__(name: str) -> Any:
    # Lazy: `from safr_lightning.model.config import ModelConfig` (the Hydra schema) must not import torch.
    if name in __all__:
        from safr_lightning.model import transformer

        return getattr(transformer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
