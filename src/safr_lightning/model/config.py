"""What the transformer is made of: the ``model`` and ``vmask`` config blocks, torch-free.

The Hydra schema (:mod:`safr_lightning.config.schema`) uses these dataclasses as they are, and
:meth:`SAFRTransformer.from_config <safr_lightning.model.transformer.SAFRTransformer.from_config>`
builds the model from them: a key written in YAML reaches the model under the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from safr_lightning.errors import SAFRError


@dataclass
class ModelConfig:
    """``model.*``: the transformer (E = d_model, M = n_heads, F = d_ff)."""

    name: str = "safr"  # safr | baseline: a label for tables; `vmask` is what changes the model
    vmask: bool = True  # a VMASK layer after the embedding (False: the paper's Baseline)
    d_model: int = 256
    n_heads: int = 8
    d_ff: int = 1024
    n_layers: int = 1
    dropout: float = 0.1
    compile: bool = False  # torch.compile the model (GPU); state-dict keys stay the plain model's


@dataclass
class VMaskConfig:
    """``vmask.*``: the VMASK layer (Chen & Ji 2020): a keep probability per token, Gumbel-softmax in training."""

    hidden: int = 1024
    tau: float = 1.0
    # VMASK's information term, mean over real tokens of q log q + (1-q) log(1-q); 0 as in SAFR.
    beta: float = 0.0


Config = TypeVar("Config", ModelConfig, VMaskConfig)


def typed(kind: type[Config], values: Mapping[str, Any] | Config, where: str = "checkpoint") -> Config:
    """``values`` (a checkpoint's saved dict, a DictConfig, or the dataclass) as ``kind``.

    A key ``kind`` does not know is one line naming it: a checkpoint from another version of the
    model cannot be loaded into this one silently.
    """
    if isinstance(values, kind):
        return values
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SAFRError(
            f"the {where}'s {kind.__name__} has key {unknown[0]!r}, which this version does not know "
            f"(known: {', '.join(sorted(known))}); it was written by another version of safr-lightning"
        )
    return kind(**{key: values[key] for key in known if key in values})
