"""Neuron allocation of a trained model: per-text profiles and dataset statistics for the figures.

Everything here runs the model in eval mode under ``torch.inference_mode`` and reads its trace
(DESIGN §3); the maths is :mod:`safr_lightning.metrics`. Results are plain numpy arrays, ready
for :mod:`safr_lightning.plots`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from tokenizers import Tokenizer

from safr_lightning.data.batches import TokenizedSplit
from safr_lightning.data.tokenizer import UNK_ID
from safr_lightning.errors import SAFRError
from safr_lightning.metrics.attention import attention_received, correlated_pairs, pair_mask
from safr_lightning.metrics.deletion import IMPORTANT_K, important_tokens
from safr_lightning.metrics.superposition import capacity, centred, interference, polysemanticity
from safr_lightning.module import SAFRModule

# The layers of Figures 4 and 5, in the order the data flows through them.
PROFILE_LAYERS = ("embedding", "vmask", "attn_out", "fc1", "fc2")
LAYER_TITLES = {
    "embedding": "embedding",
    "vmask": "VMASK",
    "attention": "attention",
    "attn_out": "attention output",
    "fc1_in": "FC1 input",
    "fc1": "FC1",
    "fc2": "FC2",
    "block_out": "block output",
}


@dataclass
class TokenView:
    """One text's tokens as the user wrote them (original casing, from the tokenizer's offsets)."""

    words: list[str]
    unknown: list[bool]
    truncated: bool = False


def token_views(tokenizer: Tokenizer, texts: Sequence[str]) -> list[TokenView]:
    """Each text's tokens, as ``SAFRModule.encode`` sees them, with the words recovered as written."""
    views = []
    for text, enc in zip(texts, tokenizer.encode_batch(list(texts), add_special_tokens=False), strict=True):
        words = [text[start:end] for start, end in enc.offsets]
        views.append(TokenView(words, [i == UNK_ID for i in enc.ids], truncated=bool(enc.overflowing)))
    return views


@dataclass
class TextProfile:
    """Everything the per-text figures and the explain printout show, for one text of n tokens.

    ``capacity`` maps a layer name to C_i [n]; ``interference`` maps a layer name (and
    ``attention``: the head-mean attention matrix) to [n, n]; ``graph_interference`` [n, n] is the
    (by default mean-centred) interference of ``graph_layer`` that the token graph draws.
    """

    text: str
    tokens: TokenView
    probs: np.ndarray
    prediction: int
    keep: np.ndarray
    attention_received: np.ndarray
    capacity: dict[str, np.ndarray]
    interference: dict[str, np.ndarray]
    graph_layer: str
    graph_interference: np.ndarray
    graph_centred: bool


@contextmanager
def evaluating(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode and inference mode for the block; the module's previous mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        module.train(was_training)


def profile_texts(
    module: SAFRModule,
    texts: Sequence[str],
    *,
    layers: Sequence[str] = PROFILE_LAYERS,
    graph_layer: str = "fc1",
    centre_graph: bool = True,
) -> list[TextProfile]:
    """Run ``texts`` through the model (one batch) and collect each text's per-layer allocation."""
    if not texts:
        raise SAFRError("no texts to explain: give text=..., texts=[...] or text_file=...")
    views = token_views(module.tokenizer, texts)
    with evaluating(module):
        batch = module.encode(texts)
        mask = batch["attention_mask"]
        out = module.model(batch["input_ids"], mask, return_trace=True)
        trace = out.trace
        assert trace is not None
        probs = out.logits.float().softmax(-1).cpu().numpy()
        caps = {name: capacity(trace[name], mask).cpu().numpy() for name in layers}
        inter = {name: interference(trace[name], mask).cpu().numpy() for name in layers}
        inter["attention"] = trace["attention"].float().mean(1).cpu().numpy()
        graph_h = centred(trace[graph_layer], mask) if centre_graph else trace[graph_layer]
        graph = interference(graph_h, mask).cpu().numpy()
        keep = trace["vmask_prob"].float().cpu().numpy()
        received = attention_received(trace["attention"], mask).cpu().numpy()
    profiles = []
    for b, (text, view) in enumerate(zip(texts, views, strict=True)):
        n = len(view.words)
        profiles.append(
            TextProfile(
                text=text,
                tokens=view,
                probs=probs[b],
                prediction=int(probs[b].argmax()),
                keep=keep[b, :n],
                attention_received=received[b, :n],
                capacity={name: value[b, :n] for name, value in caps.items()},
                interference={name: value[b, :n, :n] for name, value in inter.items()},
                graph_layer=graph_layer,
                graph_interference=graph[b, :n, :n],
                graph_centred=centre_graph,
            )
        )
    return profiles


class Reservoir:
    """A uniform random sample of at most ``size`` values from a stream of tensors (seeded).

    Every value gets a random key; the ``size`` smallest keys seen so far are kept, which is a
    uniform sample without replacement of everything offered, whatever the batch sizes.
    """

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.generator = generator
        self.values = torch.empty(0)
        self.keys = torch.empty(0)
        self.seen = 0

    def add(self, values: torch.Tensor) -> None:
        values = values.detach().float().flatten().cpu()
        self.seen += values.numel()
        keys = torch.rand(values.numel(), generator=self.generator)
        self.values = torch.cat([self.values, values])
        self.keys = torch.cat([self.keys, keys])
        if self.values.numel() > self.size:
            keep = torch.topk(self.keys, self.size, largest=False).indices
            self.values, self.keys = self.values[keep], self.keys[keep]

    def numpy(self) -> np.ndarray:
        return self.values.numpy()


@dataclass
class GroupStatistics:
    """Figures 2a/2c's data: per-token and per-pair values of one layer, split in two groups each.

    Tokens: the top ``k`` % of each text by VMASK keep probability ("important", Table 3's
    definition) vs the rest. Pairs (i < j): the top ``k`` % of each text's pairs by mutual attention ("correlated") vs
    the rest. Arrays are uniform samples of at most ``max_samples`` values per group.
    """

    layer: str
    k: float
    n_texts: int
    capacity_important: np.ndarray
    capacity_rest: np.ndarray
    polysemanticity_important: np.ndarray
    polysemanticity_rest: np.ndarray
    interference_correlated: np.ndarray
    interference_other: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


def sample_batches(
    split: TokenizedSplit, batch_size: int, max_texts: int | None = None, seed: int = 0
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of a seeded uniform sample of ``max_texts`` texts of ``split`` (all of it when None).

    Not the evaluation loader's order: that one is sorted by length, so its first N texts would be
    the N shortest. Within the sample, texts are sorted by length so that batches carry little padding.
    """
    n = len(split)
    if max_texts is None or max_texts >= n:
        index = torch.arange(n)
    else:
        index = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_texts]
    index = index[torch.argsort(split.lengths[index], stable=True)]
    for chunk in index.split(batch_size):
        yield split.__getitems__(chunk.tolist())


GROUPS = (
    "capacity_important",
    "capacity_rest",
    "polysemanticity_important",
    "polysemanticity_rest",
    "interference_correlated",
    "interference_other",
)


def group_statistics(
    module: SAFRModule,
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    layer: str = "fc1",
    k: float = IMPORTANT_K,
    max_texts: int | None = None,
    max_samples: int = 1_000_000,
    seed: int = 0,
) -> GroupStatistics:
    """Capacity and polysemanticity of important vs other tokens, interference of correlated vs
    other pairs, at ``layer``, over ``batches`` (dicts with ``input_ids`` and ``attention_mask``)."""
    if module.model.vmask is None:
        raise SAFRError("the important-token figure needs a VMASK model (model.vmask=true); this is a Baseline")
    generator = torch.Generator().manual_seed(seed)
    pools = {name: Reservoir(max_samples, generator) for name in GROUPS}
    n_texts = 0
    with evaluating(module):
        for batch in batches:
            ids, mask = batch["input_ids"], batch["attention_mask"].bool()
            if max_texts is not None:
                ids, mask = ids[: max_texts - n_texts], mask[: max_texts - n_texts]
            if len(ids) == 0:
                break
            ids, mask = ids.to(module.device), mask.to(module.device)
            trace = module.model(ids, mask, return_trace=True).trace
            assert trace is not None
            h = trace[layer]
            important = important_tokens(trace["vmask_prob"], mask, k)
            rest = mask & ~important
            cap, poly = capacity(h, mask), polysemanticity(h, mask)
            correlated = correlated_pairs(trace["attention"], mask, k)
            upper = pair_mask(mask).triu(1)
            inter = interference(h, mask)
            pools["capacity_important"].add(cap[important])
            pools["capacity_rest"].add(cap[rest])
            pools["polysemanticity_important"].add(poly[important])
            pools["polysemanticity_rest"].add(poly[rest])
            pools["interference_correlated"].add(inter[correlated])
            pools["interference_other"].add(inter[upper & ~correlated])
            n_texts += len(ids)
            if max_texts is not None and n_texts >= max_texts:
                break
    if n_texts == 0:
        raise SAFRError("no texts to compute the important-token statistics on (empty split?)")
    return GroupStatistics(
        layer=layer,
        k=k,
        n_texts=n_texts,
        counts={name: pool.seen for name, pool in pools.items()},
        **{name: pool.numpy() for name, pool in pools.items()},
    )
