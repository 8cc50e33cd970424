"""The SAFR transformer classifier and its VMASK layer."""

from safr_lightning.model.transformer import ModelOutput, SAFRTransformer

__all__ = ["ModelOutput", "SAFRTransformer"]
