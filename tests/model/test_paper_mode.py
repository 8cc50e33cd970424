"""fidelity=paper at the model level: the official code's forward and regularizers, padding included."""

from __future__ import annotations

import pytest
import torch

from safr_lightning.losses import paper_importance_loss, paper_interaction_loss
from safr_lightning.model.transformer import SAFRTransformer
from tests import reference as ref

MAX_LEN = 12
PAPER = {"pad_embedding": "trained", "pool_over_pad": True, "init": "paper"}


def paper_model(max_len: int = MAX_LEN, vmask: bool = True, seed: int = 0) -> SAFRTransformer:
    torch.manual_seed(seed)
    return SAFRTransformer(
        40, 2, d_model=16, n_heads=4, d_ff=32, vmask=vmask, vmask_hidden=8, fixed_length=max_len, **PAPER
    ).eval()


def padded_batch(lengths: list[int], width: int = MAX_LEN, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = ref.random_mask(lengths, width)
    return torch.randint(2, 40, mask.shape, generator=g) * mask, mask


@pytest.mark.parametrize("lengths", [[5, 1, 12, 3], [1], [12, 12]])
def test_paper_mode_matches_a_line_by_line_port_of_the_official_code(lengths: list[int]) -> None:
    model = paper_model()
    ids, mask = padded_batch(lengths)
    with torch.no_grad():
        out = model(ids, mask, return_trace=True)
        official = ref.official_forward(model, ids)
    torch.testing.assert_close(out.logits, official["logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.trace["vmask"], official["vmask"], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out.trace["attention"], official["attention"], atol=1e-6, rtol=1e-5)
    assert float(paper_importance_loss(out.trace["vmask"])) == pytest.approx(
        ref.official_polysemanticity_loss(official["vmask"]), rel=1e-4
    )
    assert float(paper_interaction_loss(out.trace["attention"])) == pytest.approx(
        ref.official_interaction_loss(official["attention"]), rel=1e-5
    )


def test_paper_regularizers_are_not_the_exact_ones_when_padding_is_present() -> None:
    from safr_lightning.losses import importance_loss, interaction_loss

    model = paper_model()
    ids, mask = padded_batch([5, 2])
    with torch.no_grad():
        trace = model(ids, mask, return_trace=True).trace
    assert float(paper_importance_loss(trace["vmask"])) != pytest.approx(float(importance_loss(trace["vmask"], mask)))
    assert float(paper_interaction_loss(trace["attention"])) != pytest.approx(
        float(interaction_loss(trace["attention"], mask))
    )


def test_paper_interaction_gradient_equals_autograd_of_the_official_formula() -> None:
    """The normalisation A / rowsum(A) is dropped: its gradient is removed by the softmax's backward."""
    g = torch.Generator().manual_seed(3)
    mask = ref.random_mask([6, 2, 4], 6)
    scores = torch.randn(3, 2, 6, 6, generator=g, dtype=torch.float64)
    scores = scores.masked_fill(~mask[:, None, None, :], -1e9).requires_grad_()

    def literal(s: torch.Tensor) -> torch.Tensor:
        a = s.softmax(-1)
        a_norm = a / a.sum(-1, keepdim=True)
        inter = a @ a.transpose(-1, -2)
        inter = inter * (1 - torch.eye(6, dtype=inter.dtype))
        return (a_norm * (1 - inter)).mean()

    (expected,) = torch.autograd.grad(literal(scores), scores)
    (got,) = torch.autograd.grad(paper_interaction_loss(scores.softmax(-1)), scores)
    torch.testing.assert_close(got.double(), expected, atol=1e-7, rtol=1e-4)


def test_paper_importance_gradient_equals_autograd_of_the_official_formula() -> None:
    g = torch.Generator().manual_seed(4)
    h = torch.randn(2, 5, 8, generator=g, dtype=torch.float64)
    h[0, 3] = 0  # a token VMASK dropped: the official norm's eps keeps it finite
    h.requires_grad_()

    def literal(x: torch.Tensor) -> torch.Tensor:
        unit = x / (1e-5 + torch.linalg.norm(x, dim=-1, keepdim=True))
        inter = torch.einsum("ble,bme->blm", unit, x).masked_fill(torch.eye(5, dtype=torch.bool), 0)
        return (torch.linalg.norm(inter, dim=-1) / 8**0.5).mean()

    (expected,) = torch.autograd.grad(literal(h), h)
    (got,) = torch.autograd.grad(paper_importance_loss(h), h)
    torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("vmask", [True, False])
def test_paper_mode_logits_change_with_max_len(vmask: bool) -> None:
    """PAD is part of the paper's model: the same text padded to another max_len is another input."""
    short, long = paper_model(8, vmask), paper_model(16, vmask)
    long.load_state_dict(short.state_dict())
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        a = short(ids, ids != 0).logits
        b = long(ids, ids != 0).logits
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("vmask", [True, False])
def test_exact_mode_logits_do_not_change_with_padding(vmask: bool) -> None:
    torch.manual_seed(0)
    model = SAFRTransformer(40, 2, d_model=16, n_heads=4, d_ff=32, vmask=vmask, vmask_hidden=8).eval()
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        alone = model(ids, ids != 0).logits
        for width in (8, 16):
            wide = torch.nn.functional.pad(ids, (0, width - 3))
            torch.testing.assert_close(model(wide, wide != 0).logits, alone, atol=1e-5, rtol=0)
    # fixed padding alone (PAD kept out of pooling and losses) changes nothing either
    torch.manual_seed(0)
    fixed = SAFRTransformer(40, 2, d_model=16, n_heads=4, d_ff=32, vmask=vmask, vmask_hidden=8, fixed_length=16)
    fixed.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fixed.eval()(ids, ids != 0).logits, alone, atol=1e-5, rtol=0)


def test_model_pads_short_inputs_itself_and_traces_the_fixed_width() -> None:
    model = paper_model()
    ids, mask = padded_batch([4, 2], width=4)
    with torch.no_grad():
        narrow = model(ids, mask, return_trace=True)
        full_ids, full_mask = model.pad_inputs(ids, mask)
        wide = model(full_ids, full_mask)
    assert full_ids.shape == (2, MAX_LEN) and not full_mask[:, 4:].any()
    torch.testing.assert_close(narrow.logits, wide.logits)
    assert narrow.trace["fc1"].shape[1] == MAX_LEN
    assert torch.equal(narrow.trace["attention_mask"], full_mask)
    with pytest.raises(ValueError, match="pads to 12"):
        model(torch.ones(1, 13, dtype=torch.long), torch.ones(1, 13, dtype=torch.bool))


def test_trained_pad_embedding_is_random_and_gets_gradient() -> None:
    model = paper_model().train()
    pad_row = model.embedding.weight[0]
    assert pad_row.abs().sum() > 0
    assert float(model.embedding.weight.detach().std()) == pytest.approx(1.0, abs=0.1)  # nn.Embedding's N(0, 1)
    ids, mask = padded_batch([3])
    model(ids, mask).logits.sum().backward()
    assert model.embedding.weight.grad[0].abs().sum() > 0


def test_exact_pad_embedding_stays_zero_without_gradient() -> None:
    torch.manual_seed(0)
    model = SAFRTransformer(40, 2, d_model=16, n_heads=4, d_ff=32, vmask_hidden=8).train()
    assert model.embedding.weight[0].abs().sum() == 0
    assert float(model.embedding.weight[1:].detach().std()) == pytest.approx(16**-0.5, rel=0.2)
    ids, mask = padded_batch([3, 1], width=5)
    model(ids, mask).logits.sum().backward()
    assert model.embedding.weight.grad[0].abs().sum() == 0


def test_vmask_runs_on_pad_when_pad_is_a_token() -> None:
    model = paper_model()
    ids, mask = padded_batch([3])
    with torch.no_grad():
        trace = model(ids, mask, return_trace=True).trace
    assert trace["vmask"][0, 3:].abs().sum() > 0
    assert (trace["vmask_prob"][0, 3:] > 0).all()


def test_pool_over_pad_needs_a_fixed_length() -> None:
    with pytest.raises(ValueError, match="fixed_length"):
        SAFRTransformer(40, 2, d_model=16, n_heads=4, d_ff=32, pool_over_pad=True)


def test_masked_positions_are_pad_in_paper_mode_whatever_ids_they_hold() -> None:
    model = paper_model()
    ids, mask = padded_batch([4, 2])
    garbage = ids.masked_fill(~mask, 7)
    with torch.no_grad():
        torch.testing.assert_close(model(garbage, mask).logits, model(ids, mask).logits)


# -- the fast paper path (PAD keys skipped) against the plain one ------------------------------------


def _run(model: SAFRTransformer, ids: torch.Tensor, mask: torch.Tensor, fast: bool, seed: int) -> dict:
    from safr_lightning.losses import LossWeights, safr_loss

    model.skip_pad_keys = fast
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout and Gumbel draws on both paths (same shapes)
    out = model(ids, mask, return_trace=True, compact=fast)
    labels = torch.arange(len(ids)) % 2
    terms = safr_loss(out.logits, labels, out.trace, LossWeights(imp=0.3, inter=0.7, regularizers="paper"))
    terms["loss"].backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {"logits": out.logits.detach(), **{k: v.detach() for k, v in terms.items()}, "grads": grads,
            "key_columns": out.trace["attention"].shape[-1]}  # fmt: skip


@pytest.mark.parametrize("lengths", [[1, 1, 1], [3, 12, 1, 7], [4, 2], [12, 12], [9]])
@pytest.mark.parametrize("training", [False, True])
def test_skipping_pad_keys_changes_no_logit_loss_term_or_gradient(lengths: list[int], training: bool) -> None:
    """One-token texts, texts at max_len, mixed lengths; in eval and in training (dropout, Gumbel)."""
    model = paper_model(seed=1).train(training)
    ids, mask = padded_batch(lengths, seed=2)
    fast, plain = _run(model, ids, mask, True, seed=3), _run(model, ids, mask, False, seed=3)
    assert fast["key_columns"] == max(lengths) and plain["key_columns"] == MAX_LEN
    for key in ("logits", "loss_ce", "loss_imp", "loss_inter", "loss"):
        torch.testing.assert_close(fast[key], plain[key], atol=1e-6, rtol=1e-5, msg=key)
    assert fast["grads"].keys() == plain["grads"].keys() and len(fast["grads"]) > 10
    for name, grad in plain["grads"].items():
        torch.testing.assert_close(fast["grads"][name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_the_full_trace_of_the_fast_path_is_the_plain_paths_attention_zero_filled() -> None:
    model = paper_model()
    ids, mask = padded_batch([3, 5, 1])
    with torch.no_grad():
        fast = model(ids, mask, return_trace=True).trace["attention"]
        model.skip_pad_keys = False
        plain = model(ids, mask, return_trace=True).trace["attention"]
    assert fast.shape == plain.shape == (3, 4, MAX_LEN, MAX_LEN)
    torch.testing.assert_close(fast, plain, atol=1e-7, rtol=1e-6)
    assert float(fast[..., 5:].abs().max()) == 0.0


def test_exact_regularizers_on_a_compact_trace_equal_them_on_the_full_one() -> None:
    """fidelity.fixed_padding with the exact regularizers (a decomposition variant): rows after K are PAD."""
    from safr_lightning.losses import interaction_loss

    model = paper_model()
    ids, mask = padded_batch([3, 5, 1])
    with torch.no_grad():
        full = model(ids, mask, return_trace=True).trace
        compact = model(ids, mask, return_trace=True, compact=True).trace
    assert compact["attention"].shape[-1] == 5
    for include_self in (False, True):
        assert float(interaction_loss(compact["attention"], compact["attention_mask"], include_self)) == pytest.approx(
            float(interaction_loss(full["attention"], full["attention_mask"], include_self)), rel=1e-6
        )
