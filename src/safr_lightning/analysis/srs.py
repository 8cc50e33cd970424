"""SRS, deletion faithfulness, capacity statistics and rationale precision over a dataset (DESIGN §6–§8).

:func:`evaluate_srs` runs a model in eval mode over batches and returns the ``test`` block of
``results.json``: for every k in ``ks``

- ``acc_capacity[k]``: accuracy after deleting the ``n_k`` top tokens by the chosen scorer
  (capacity at ``layer`` by default; the key keeps the paper's name whatever the scorer),
- ``acc_random[k]``: the same after deleting ``n_k`` random tokens (mean over ``random_draws``),
- ``srs[k] = (acc − acc_capacity[k])·100`` and ``gap[k] = (acc_random[k] − acc_capacity[k])·100``,
- ``comprehensiveness[k] = mean p(ŷ|x) − p(ŷ|x∖top_k)`` and ``sufficiency[k] = mean p(ŷ|x) − p(ŷ|top_k)``
  (ERASER; ŷ the original prediction, top_k the scorer's top k %), and their means over k (AOPC);

plus Table 3's mean capacity at ``layer`` of all tokens, of each text's top 30 % by VMASK keep
probability and of the rest (token-weighted over the whole set; ``null`` without VMASK), and, when
the batches carry ``rationale`` (the synthetic task), the precision of the top k % tokens.

Which tokens are deleted, kept or important is chosen by :mod:`safr_lightning.metrics.deletion`
(``rank_tokens``, ``deletion_keep``, ``sufficiency_keep``, ``important_tokens``), as everywhere else.
Every shortened copy of a batch is built on tensors and run in a few large forward calls
(:mod:`safr_lightning.model.subset_forward`); nothing loops over tokens. A model with a fixed
length (``fidelity.fixed_padding``) re-pads every copy to it, as the paper's code would (the fast
path computes the PAD positions' part once per position, see ``subset_forward``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from safr_lightning.config.schema import SRSConfig
from safr_lightning.errors import ConfigError
from safr_lightning.metrics.deletion import (
    deletion_keep,
    gather_kept,
    important_tokens,
    pack,
    rank_tokens,
    sufficiency_keep,
)
from safr_lightning.metrics.scorers import random_scores, token_scores
from safr_lightning.metrics.superposition import capacity
from safr_lightning.model.subset_forward import DeletionForward, TokenCache, supports
from safr_lightning.model.transformer import SAFRTransformer
from safr_lightning.results import k_key

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
ScoreFn = Callable[[dict[str, torch.Tensor], Batch], torch.Tensor]
# The fast path must reproduce the model's own forward to this (fp32 logits); see model/subset_forward.py.
FAST_PATH_ATOL = 1e-4
_SRS_DEFAULTS = SRSConfig()


@dataclass(frozen=True)
class SRSSettings:
    """What to evaluate: the ``srs`` config block's keys (defaults from ``SRSConfig``, not restated)
    plus how to run it (``max_tokens``, ``fast``)."""

    ks: tuple[float, ...] = tuple(_SRS_DEFAULTS.ks)
    scorer: str = _SRS_DEFAULTS.scorer
    layer: str = _SRS_DEFAULTS.layer
    random_draws: int = _SRS_DEFAULTS.random_draws
    seed: int = _SRS_DEFAULTS.seed
    # Tokens (rows × width) per forward call of shortened copies: bounds memory (FC1 activations).
    max_tokens: int = 32768
    fast: bool = True

    @classmethod
    def from_config(cls, srs: Any, **overrides: Any) -> SRSSettings:
        return cls(
            ks=tuple(float(k) for k in srs.ks),
            scorer=str(srs.scorer),
            layer=str(srs.layer),
            random_draws=int(srs.random_draws),
            seed=int(srs.seed),
            **overrides,
        )


def _k_value(k: float) -> float | int:
    return int(k) if float(k).is_integer() else float(k)


@dataclass
class _Sums:
    """Running sums (tensors on the model's device, so no per-batch host sync)."""

    n: torch.Tensor
    correct: torch.Tensor
    correct_scored: torch.Tensor  # [K]
    correct_random: torch.Tensor  # [K], summed over draws
    comprehensiveness: torch.Tensor  # [K]
    sufficiency: torch.Tensor  # [K]
    capacity: torch.Tensor  # [3]: sum over all / important / rest tokens
    capacity_count: torch.Tensor  # [3]
    planted: torch.Tensor  # [2]: planted tokens, real tokens (texts with rationales)
    precision: torch.Tensor  # [K, 2]: planted among the scorer's top tokens, top tokens
    precision_random: torch.Tensor  # [K, 2], summed over draws
    has_rationale: bool = False

    @classmethod
    def zeros(cls, n_ks: int, device: torch.device) -> _Sums:
        def z(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, dtype=torch.float64, device=device)

        return cls(z(), z(), z(n_ks), z(n_ks), z(n_ks), z(n_ks), z(3), z(3), z(2), z(n_ks, 2), z(n_ks, 2))

    def tensors(self) -> list[torch.Tensor]:
        return [
            self.n, self.correct, self.correct_scored, self.correct_random, self.comprehensiveness,
            self.sufficiency, self.capacity, self.capacity_count, self.planted, self.precision,
            self.precision_random,
        ]  # fmt: skip


class _VariantRunner:
    """Logits of shortened copies of one traced batch: the fast path, or the model's own forward."""

    def __init__(self, model: nn.Module, settings: SRSSettings) -> None:
        self.model = model
        self.max_tokens = settings.max_tokens
        self.fast = DeletionForward(model) if settings.fast and supports(model) else None  # type: ignore[arg-type]
        self.verified = False
        self.cache: TokenCache | None = None
        self.input_ids: torch.Tensor | None = None

    def start_batch(self, input_ids: torch.Tensor, trace: dict[str, torch.Tensor]) -> None:
        self.input_ids = input_ids
        self.cache = self.fast.prepare(trace) if self.fast is not None else None

    def _plain(self, rows: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert self.input_ids is not None
        ids = gather_kept(self.input_ids[rows], source, mask)
        return self.model(ids, mask).logits.float()

    def _chunks(self, rows: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, run: Callable) -> torch.Tensor:
        # The model's own forward pads a fixed-length model's copies to that length: count it so.
        width = getattr(self.model, "fixed_length", None) or source.shape[1]
        per_copy = self.fast.tokens_per_copy(source.shape[1]) if self.fast is not None else width
        step = max(1, self.max_tokens // max(1, per_copy))
        return torch.cat([run(rows[i : i + step], source[i : i + step], mask[i : i + step])
                          for i in range(0, len(rows), step)])  # fmt: skip

    def logits(self, keep: torch.Tensor) -> torch.Tensor:
        """``keep`` [V, B, T] bool (which tokens each copy keeps) -> logits [V, B, C] (fp32)."""
        n_variants, b, t = keep.shape
        rows = torch.arange(b, device=keep.device).repeat(n_variants)
        source, mask = pack(keep.reshape(n_variants * b, t))
        if self.fast is None:
            out = self._chunks(rows, source, mask, self._plain)
        else:
            assert self.cache is not None
            cache = self.cache
            out = self._chunks(rows, source, mask, lambda r, s, m: self.fast(cache, r, s, m).float())
            if not self.verified:
                self._verify(rows, source, mask, out)
        return out.view(n_variants, b, -1)

    def _verify(self, rows: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, fast: torch.Tensor) -> None:
        """Check the fast path against the model's own forward once per evaluation (64 copies)."""
        self.verified = True
        sample = slice(0, 64)
        plain = self._plain(rows[sample], source[sample], mask[sample])
        diff = float((plain - fast[sample]).abs().max())
        if not math.isfinite(diff) or diff > FAST_PATH_ATOL:
            log.warning(
                "SRS fast path differs from the model's forward by %.3g (> %g); using the model's forward",
                diff, FAST_PATH_ATOL,
            )  # fmt: skip
            self.fast = None
            self.cache = None
            raise _FallBack


class _FallBack(Exception):
    """Raised once when the fast path disagrees: the current batch is redone with the plain path."""


def check_scorer(model: nn.Module, settings: SRSSettings) -> None:
    """Refuse a scorer the model cannot support, in one sentence."""
    if settings.scorer == "vmask" and getattr(model, "vmask", None) is None:
        raise ConfigError(
            "invalid config: srs.scorer='vmask' needs a model with a VMASK layer (model.vmask=true); this one has none"
        )


def evaluate_srs(
    model: nn.Module,
    batches: Iterable[Batch],
    settings: SRSSettings,
    *,
    score_fn: ScoreFn | None = None,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Run the whole deletion evaluation of ``model`` (a SAFRTransformer) over ``batches``.

    Batches hold ``input_ids`` [B, T], ``attention_mask`` [B, T], ``labels`` [B], and optionally
    ``index`` [B] (position in the split; seeds the random deletions) and ``rationale`` [B, T].
    ``score_fn(trace, batch) -> scores [B, T]`` replaces ``settings.scorer`` (a custom scorer; the
    results then report ``scorer: "custom"``). ``reduce`` sums the running totals across
    processes (DDP); None on one process.
    Returns the results.json dict (accuracies as fractions, srs/gap in percentage points).
    """
    if score_fn is None:
        check_scorer(model, settings)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums = _Sums.zeros(len(settings.ks), device)
    runner = _VariantRunner(model, settings)
    try:
        with torch.inference_mode():
            for batch in batches:
                try:
                    _evaluate_batch(model, batch, settings, sums, runner, device, score_fn)
                except _FallBack:
                    _evaluate_batch(model, batch, settings, sums, runner, device, score_fn)
    finally:
        model.train(was_training)
    if reduce is not None:
        sums = _Sums(*[reduce(t) for t in sums.tensors()], has_rationale=sums.has_rationale)
    result = _finish(sums, settings, has_vmask=getattr(model, "vmask", None) is not None)
    if score_fn is not None:
        result["scorer"] = "custom"
    return result


def _evaluate_batch(
    model: nn.Module,
    batch: Batch,
    settings: SRSSettings,
    sums: _Sums,
    runner: _VariantRunner,
    device: torch.device,
    score_fn: ScoreFn | None,
) -> None:
    batch = {key: value.to(device) for key, value in batch.items() if isinstance(value, torch.Tensor)}
    ids = batch["input_ids"]
    mask = batch["attention_mask"].bool()
    if isinstance(model, SAFRTransformer) and model.fixed_length is not None:
        # The model pads to its fixed length (fidelity.fixed_padding) and traces that width: pad the
        # batch alike, so masks and trace line up.
        width = ids.shape[1]
        ids, mask = model.pad_inputs(ids, mask)
        if "rationale" in batch:
            batch["rationale"] = F.pad(batch["rationale"].bool(), (0, ids.shape[1] - width), value=False)
    labels = batch["labels"]
    b = ids.shape[0]
    index = batch.get("index")
    index = index if index is not None else torch.arange(b, device=device)

    out = model(ids, mask, return_trace=True)
    trace = out.trace
    probs = out.logits.float().softmax(-1)
    pred = probs.argmax(-1)
    p_hat = probs.gather(1, pred[:, None]).squeeze(1)
    lengths = mask.sum(1)

    # Snapshot everything this batch adds, so a fast-path fallback can redo the batch cleanly.
    staged = _Sums.zeros(len(settings.ks), device)
    staged.n += b
    staged.correct += (pred == labels).sum()

    if score_fn is not None:
        scores = score_fn(trace, batch).masked_fill(~mask, float("-inf"))
    else:
        scores = token_scores(settings.scorer, trace, layer=settings.layer, index=index, seed=settings.seed)
    rank_scored = rank_tokens(scores, mask)
    rank_random = torch.stack(
        [rank_tokens(random_scores(index, mask, settings.seed, draw), mask) for draw in range(settings.random_draws)]
    )  # fmt: skip  [D, B, T]

    # Table 3: capacity at the chosen layer; important = each text's top 30 % by keep probability.
    if settings.layer not in trace:
        raise ConfigError(f"invalid config: srs.layer={settings.layer!r}; the trace has {', '.join(sorted(trace))}")
    cap = capacity(trace[settings.layer], mask).double()  # 0 at padding
    staged.capacity[0] += cap.sum()
    staged.capacity_count[0] += lengths.sum()
    if getattr(model, "vmask", None) is not None:
        important = important_tokens(trace["vmask_prob"], mask)
        rest = mask & ~important
        staged.capacity[1] += (cap * important).sum()
        staged.capacity_count[1] += important.sum()
        staged.capacity[2] += (cap * rest).sum()
        staged.capacity_count[2] += rest.sum()

    rationale = batch.get("rationale")
    if rationale is not None:
        rationale = rationale.bool() & mask
        sums.has_rationale = True
        staged.planted[0] += rationale.sum()
        staged.planted[1] += lengths.sum()

    runner.start_batch(ids, trace)
    sufficiency_keeps = []
    for i, k in enumerate(settings.ks):
        keeps = deletion_keep(torch.cat([rank_scored[None], rank_random]), mask, k)  # [1 + D, B, T]
        drop_scored, drop_random = mask & ~keeps[0], mask & ~keeps[1:]
        variant_probs = runner.logits(keeps).softmax(-1)
        variant_pred = variant_probs.argmax(-1)  # [1 + D, B]
        staged.correct_scored[i] += (variant_pred[0] == labels).sum()
        staged.correct_random[i] += (variant_pred[1:] == labels).sum()
        staged.comprehensiveness[i] += (p_hat - variant_probs[0].gather(1, pred[:, None]).squeeze(1)).sum()
        sufficiency_keeps.append(sufficiency_keep(rank_scored, mask, k))
        if rationale is not None:
            staged.precision[i, 0] += (drop_scored & rationale).sum()
            staged.precision[i, 1] += drop_scored.sum()
            staged.precision_random[i, 0] += (drop_random & rationale).sum()
            staged.precision_random[i, 1] += drop_random.sum()
    suff_probs = runner.logits(torch.stack(sufficiency_keeps)).softmax(-1)  # [K, B, C]
    p_kept = suff_probs.gather(2, pred[None, :, None].expand(len(settings.ks), b, 1)).squeeze(2)
    staged.sufficiency += (p_hat[None] - p_kept).sum(1)

    for total, part in zip(sums.tensors(), staged.tensors(), strict=True):
        total += part


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _finish(sums: _Sums, settings: SRSSettings, has_vmask: bool) -> dict[str, Any]:
    n = float(sums.n)
    keys = [k_key(k) for k in settings.ks]
    acc = _ratio(float(sums.correct), n)
    acc_scored = [_ratio(float(c), n) for c in sums.correct_scored.tolist()]
    acc_random = [_ratio(float(c), n * settings.random_draws) for c in sums.correct_random.tolist()]
    comp = [_ratio(float(c), n) for c in sums.comprehensiveness.tolist()]
    suff = [_ratio(float(s), n) for s in sums.sufficiency.tolist()]

    def pp(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else (a - b) * 100.0

    def mean(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(values) / len(values)  # type: ignore[arg-type]

    cap = sums.capacity.tolist()
    cap_n = sums.capacity_count.tolist()
    result: dict[str, Any] = {
        "acc": acc,
        "n": int(n),
        "ks": [_k_value(k) for k in settings.ks],
        "scorer": settings.scorer,
        "layer": settings.layer,
        "random_draws": settings.random_draws,
        "acc_capacity": dict(zip(keys, acc_scored, strict=True)),
        "acc_random": dict(zip(keys, acc_random, strict=True)),
        "srs": {key: pp(acc, a) for key, a in zip(keys, acc_scored, strict=True)},
        "gap": {key: pp(r, a) for key, r, a in zip(keys, acc_random, acc_scored, strict=True)},
        "comprehensiveness": dict(zip(keys, comp, strict=True)),
        "sufficiency": dict(zip(keys, suff, strict=True)),
        "aopc_comprehensiveness": mean(comp),
        "aopc_sufficiency": mean(suff),
        "capacity": {
            "all": _ratio(cap[0], cap_n[0]),
            "important": _ratio(cap[1], cap_n[1]) if has_vmask else None,
            "rest": _ratio(cap[2], cap_n[2]) if has_vmask else None,
        },
    }
    if sums.has_rationale:
        prec = sums.precision.tolist()
        prec_random = sums.precision_random.tolist()
        result["rationale_precision"] = {key: _ratio(*p) for key, p in zip(keys, prec, strict=True)}
        result["rationale_precision_random"] = {key: _ratio(*p) for key, p in zip(keys, prec_random, strict=True)}
        result["planted_fraction"] = _ratio(*sums.planted.tolist())
    return result


PER_K = ("acc_capacity", "acc_random", "srs", "gap", "comprehensiveness", "sufficiency",
         "rationale_precision", "rationale_precision_random")  # fmt: skip
SCALARS = ("acc", "aopc_comprehensiveness", "aopc_sufficiency", "planted_fraction")


def flat_metrics(result: dict[str, Any], prefix: str) -> dict[str, float]:
    """Logger-friendly names: ``{prefix}/srs@30``, ``{prefix}/capacity_important``, ... (no None)."""
    flat: dict[str, float] = {}
    for name in PER_K:
        for key, value in (result.get(name) or {}).items():
            flat[f"{prefix}/{name}@{key}"] = value
    for name in SCALARS:
        flat[f"{prefix}/{name}"] = result.get(name)  # type: ignore[assignment]
    for part, value in (result.get("capacity") or {}).items():
        flat[f"{prefix}/capacity_{part}"] = value
    return {k: float(v) for k, v in flat.items() if v is not None}


def curve_rows(result: dict[str, Any]) -> tuple[list[str], list[list[float | None]]]:
    """The SRS curve as a table (one row per k), for W&B and the evaluate CLI's printout."""
    columns = ["k", "acc_capacity", "acc_random", "srs", "gap", "comprehensiveness", "sufficiency"]
    if "rationale_precision" in result:
        columns += ["rationale_precision", "rationale_precision_random"]
    rows = [[float(k)] + [result[c][k_key(k)] for c in columns[1:]] for k in result["ks"]]
    return columns, rows
