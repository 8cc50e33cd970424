"""Slow, obviously-correct reference implementations: plain Python loops over tokens."""

from __future__ import annotations

import math

import torch


def real_tokens(mask: torch.Tensor, b: int) -> list[int]:
    return [i for i in range(mask.shape[1]) if bool(mask[b, i])]


def interference(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    B, T, _ = h.shape
    out = torch.zeros(B, T, T, dtype=torch.float64)
    for b in range(B):
        for i in real_tokens(mask, b):
            for j in real_tokens(mask, b):
                out[b, i, j] = float(torch.dot(h[b, i].double(), h[b, j].double()))
    return out


def polysemanticity(h: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    B, T, _ = h.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for i in real_tokens(mask, b):
            hi = h[b, i].double()
            unit = hi / (hi.norm() + eps)
            out[b, i] = sum(float(torch.dot(unit, h[b, j].double())) ** 2 for j in real_tokens(mask, b) if j != i)
    return out


def capacity(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    B, T, _ = h.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for i in real_tokens(mask, b):
            hi = h[b, i].double()
            num = float(torch.dot(hi, hi)) ** 2
            den = sum(float(torch.dot(hi, h[b, j].double())) ** 2 for j in real_tokens(mask, b))
            out[b, i] = num / den if den > 0 else 0.0
    return out


def importance_loss(h: torch.Tensor, mask: torch.Tensor) -> float:
    poly = polysemanticity(h, mask)
    E = h.shape[-1]
    values = [math.sqrt(float(poly[b, i]) / E) for b in range(h.shape[0]) for i in real_tokens(mask, b)]
    return sum(values) / len(values)


def interaction_loss(a: torch.Tensor, mask: torch.Tensor, include_self: bool = False) -> float:
    B, M = a.shape[:2]
    total, pairs = 0.0, 0
    for b in range(B):
        real = real_tokens(mask, b)
        for i in real:
            for j in real:
                if i == j and not include_self:
                    continue
                pairs += 1
                for alpha in range(M):
                    inter = sum(float(a[b, alpha, i, k]) * float(a[b, alpha, j, k]) for k in real)
                    total += float(a[b, alpha, i, j]) * (1 - inter)
    return total / (M * pairs) if pairs else 0.0


def random_mask(lengths: list[int], T: int | None = None) -> torch.Tensor:
    T = T or max(lengths)
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


def random_attention(mask: torch.Tensor, heads: int, generator: torch.Generator) -> torch.Tensor:
    """Row-stochastic attention over real keys, like the model's, [B, M, T, T]."""
    B, T = mask.shape
    scores = torch.randn(B, heads, T, T, generator=generator)
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return scores.softmax(-1)


# -- deletion (DESIGN §7) ---------------------------------------------------------------------


def n_rounded(n: int, k: float) -> int:
    """floor(n·k/100 + 1/2) in exact rational arithmetic (k as written in decimal)."""
    from fractions import Fraction

    return math.floor(Fraction(n) * Fraction(repr(float(k))) / 100 + Fraction(1, 2))


def important_tokens(scores: torch.Tensor, mask: torch.Tensor, k: float) -> torch.Tensor:
    """Per text: the n_rounded(n, k) highest scores, ties to the earlier position."""
    out = torch.zeros(mask.shape, dtype=torch.bool)
    for b in range(mask.shape[0]):
        real = real_tokens(mask, b)
        ranked = sorted(real, key=lambda i: (-float(scores[b, i]), i))
        for i in ranked[: n_rounded(len(real), k)]:
            out[b, i] = True
    return out


def top_positions(scores: list[float], count: int) -> list[int]:
    """Positions of the ``count`` highest scores; equal scores: the earlier position first."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(order[:count])


def delete_top(ids: list[int], scores: list[float], k: float) -> list[int]:
    """One text as lists: drop the n_k top-scored tokens (at least one survives)."""
    n = len(ids)
    drop = set(top_positions(scores, min(n_rounded(n, k), n - 1)))
    return [token for i, token in enumerate(ids) if i not in drop]


def keep_top(ids: list[int], scores: list[float], k: float) -> list[int]:
    """One text as lists: keep only the n_k top-scored tokens (at least one), in order."""
    n = len(ids)
    keep = set(top_positions(scores, min(max(n_rounded(n, k), 1), n)))
    return [token for i, token in enumerate(ids) if i in keep]


def rows_as_lists(ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    return [[int(ids[b, i]) for i in real_tokens(mask, b)] for b in range(ids.shape[0])]


def attention_received(a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over heads and real query rows of A[b, α, i, j], for every real key j; [B, T]."""
    B, M, T, _ = a.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        real = real_tokens(mask, b)
        for j in real:
            out[b, j] = sum(float(a[b, h, i, j]) for h in range(M) for i in real) / (M * len(real))
    return out


def correlated_pairs(a: torch.Tensor, mask: torch.Tensor, k: float) -> torch.Tensor:
    """Per text: the top k % of pairs i < j by (mean_h A_ij + mean_h A_ji) / 2; ties: earlier pair."""
    B, M, T, _ = a.shape
    out = torch.zeros(B, T, T, dtype=torch.bool)
    for b in range(B):
        real = real_tokens(mask, b)
        pairs = [(i, j) for i in real for j in real if i < j]
        score = {(i, j): sum(float(a[b, h, i, j]) + float(a[b, h, j, i]) for h in range(M)) / (2 * M) for i, j in pairs}
        top = n_rounded(len(pairs), k)
        for i, j in sorted(pairs, key=lambda p: (-score[p], p[0] * T + p[1]))[:top]:
            out[b, i, j] = True
    return out


def centred(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(h.shape, dtype=torch.float64)
    for b in range(h.shape[0]):
        real = real_tokens(mask, b)
        mean = sum(h[b, i].double() for i in real) / len(real)
        for i in real:
            out[b, i] = h[b, i].double() - mean
    return out


def _probs_alone(model: torch.nn.Module, tokens: list[int], pad_to: int | None = None) -> list[float]:
    """The text run alone; with ``pad_to``, padded with PAD (0) to that length first (the paper's code)."""
    width = pad_to or len(tokens)
    ids = torch.tensor([tokens + [0] * (width - len(tokens))])
    mask = torch.tensor([[True] * len(tokens) + [False] * (width - len(tokens))])
    with torch.no_grad():
        return model(ids, mask).logits[0].double().softmax(-1).tolist()


def srs_by_text(
    model: torch.nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    random_draws: list[torch.Tensor],
    ks: list[float],
    pad_to: int | None = None,
) -> dict:
    """Deletion evaluation one text at a time, with lists: each shortened text is run alone
    (re-padded to ``pad_to`` when given)."""
    rows = rows_as_lists(ids, mask)
    keys = [f"{k:g}" for k in ks]
    totals = {name: dict.fromkeys(keys, 0.0) for name in ("acc_capacity", "acc_random", "comp", "suff")}
    correct = 0
    for b, tokens in enumerate(rows):
        real = real_tokens(mask, b)
        s = [float(scores[b, i]) for i in real]
        p = _probs_alone(model, tokens, pad_to)
        pred = max(range(len(p)), key=lambda c: p[c])
        label = int(labels[b])
        correct += pred == label
        for k, key in zip(ks, keys, strict=True):
            deleted = _probs_alone(model, delete_top(tokens, s, k), pad_to)
            totals["acc_capacity"][key] += max(range(len(deleted)), key=lambda c: deleted[c]) == label
            totals["comp"][key] += p[pred] - deleted[pred]
            kept = _probs_alone(model, keep_top(tokens, s, k), pad_to)
            totals["suff"][key] += p[pred] - kept[pred]
            for draw in random_draws:
                r = _probs_alone(model, delete_top(tokens, [float(draw[b, i]) for i in real], k), pad_to)
                totals["acc_random"][key] += (max(range(len(r)), key=lambda c: r[c]) == label) / len(random_draws)
    n = len(rows)
    return {
        "acc": correct / n,
        "acc_capacity": {k: v / n for k, v in totals["acc_capacity"].items()},
        "acc_random": {k: v / n for k, v in totals["acc_random"].items()},
        "comprehensiveness": {k: v / n for k, v in totals["comp"].items()},
        "sufficiency": {k: v / n for k, v in totals["suff"].items()},
    }


def capacity_stats_by_text(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, layer: str = "fc1") -> dict:
    """Table 3 text by text: mean capacity of all tokens, of each text's top 30 % by VMASK, of the rest."""
    sums = {"all": [0.0, 0], "important": [0.0, 0], "rest": [0.0, 0]}
    for tokens in rows_as_lists(ids, mask):
        t = torch.tensor([tokens])
        alone = torch.ones_like(t, dtype=torch.bool)
        with torch.no_grad():
            trace = model(t, alone, return_trace=True).trace
        cap = capacity(trace[layer], alone)[0].tolist()
        important = set(top_positions(trace["vmask_prob"][0].tolist(), n_rounded(len(tokens), 30)))
        for i, c in enumerate(cap):
            for part in ("all", "important" if i in important else "rest"):
                sums[part][0] += c
                sums[part][1] += 1
    return {part: (total / count if count else None) for part, (total, count) in sums.items()}


# -- the official code's formulas (chili-lab/SAFR), ported line by line for the paper-mode tests ----


def official_polysemanticity_loss(x: torch.Tensor) -> float:
    """Its L_imp on the VMASK output x [B, L, E]: every position, PAD included, a loop per token."""
    B, L, E = x.shape
    values = []
    for b in range(B):
        for i in range(L):
            xi = x[b, i].double()
            unit = xi / (1e-5 + xi.norm())
            row = [float(torch.dot(unit, x[b, j].double())) for j in range(L) if j != i]
            values.append(math.sqrt(sum(v * v for v in row)) / math.sqrt(E))
    return sum(values) / len(values)


def official_interaction_loss(attn: torch.Tensor) -> float:
    """Its L_inter: mean over all B·H·L·L of A_norm_ij (1 − I_ij), I = A Aᵀ with the diagonal zeroed."""
    B, H, L, _ = attn.shape
    a = attn.double()
    total = 0.0
    for b in range(B):
        for h in range(H):
            for i in range(L):
                row_sum = float(a[b, h, i].sum())
                for j in range(L):
                    inter = 0.0 if i == j else float(torch.dot(a[b, h, i], a[b, h, j]))
                    total += float(a[b, h, i, j]) / row_sum * (1 - inter)
    return total / (B * H * L * L)


def official_forward(model: torch.nn.Module, src: torch.Tensor) -> dict[str, torch.Tensor]:
    """The official CustomTransformer's eval-mode forward, on ``model``'s weights (one layer).

    ``src`` [B, L] is already padded to max_len with PAD = 0. Returns its logits, the VMASK output and
    the attention weights, as the official code computes them: PAD is embedded, masked by VMASK like
    any token, gets positions, is attended from (not to), and enters the mean over all L positions.
    """
    B, L = src.shape
    E = model.d_model
    x = model.embedding.weight[src] * math.sqrt(E)  # nn.Embedding without padding_idx
    p = model.vmask.out(torch.tanh(model.vmask.proj(x)))
    x = x * torch.softmax(p, dim=2)[:, :, 1:2]  # flag != 'train': the expected mask
    x_vmask = x
    x = x + model.positions[:L]
    block = model.blocks[0]
    H = block.attn.n_heads
    d_k = E // H
    w_q, w_k, w_v = block.attn.qkv.weight.chunk(3)
    b_q, b_k, b_v = block.attn.qkv.bias.chunk(3)

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(B, -1, H, d_k).transpose(1, 2)

    q, k, v = heads(x @ w_q.T + b_q), heads(x @ w_k.T + b_k), heads(x @ w_v.T + b_v)
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_k)
    key_mask = (src != 0).unsqueeze(1).unsqueeze(2)
    scores = scores.masked_fill(key_mask == 0, -1e9)
    attn = torch.softmax(scores, dim=-1)
    context = torch.matmul(attn, v).transpose(1, 2).contiguous().view(B, -1, E)
    x = block.norm1(x + block.attn.out(context))
    x = block.norm2(x + block.fc2(torch.relu(block.fc1(x))))
    return {"logits": model.classifier(x.mean(dim=1)), "vmask": x_vmask, "attention": attn}
