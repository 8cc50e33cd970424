from __future__ import annotations

import pytest
import torch

from safr_lightning.model.transformer import SAFRTransformer, sinusoidal_positions

TRACE = {"embedding", "vmask", "vmask_keep", "vmask_prob", "attention", "attn_out", "fc1_in", "fc1", "fc2", "block_out",
         "attention_mask"}  # fmt: skip


def tiny(vmask: bool = True, n_layers: int = 1) -> SAFRTransformer:
    torch.manual_seed(0)
    return SAFRTransformer(50, 3, d_model=16, n_heads=4, d_ff=32, n_layers=n_layers, vmask=vmask, vmask_hidden=8)


@pytest.mark.parametrize("vmask", [True, False])
def test_eval_logits_identical_alone_and_padded_beside_longer_text(vmask: bool) -> None:
    model = tiny(vmask).eval()
    short = torch.tensor([[5, 6, 7]])
    long = torch.tensor([[8, 9, 10, 11, 12, 13, 14, 15, 16]])
    batch = torch.zeros(2, 9, dtype=torch.long)
    batch[0, :3], batch[1] = short, long
    with torch.no_grad():
        alone = model(short, torch.ones_like(short, dtype=torch.bool)).logits
        padded = model(batch, batch != 0).logits
    torch.testing.assert_close(padded[0:1], alone, atol=1e-5, rtol=0)


def test_one_token_text_runs_and_has_no_nans() -> None:
    out = tiny().eval()(torch.tensor([[3]]), torch.tensor([[True]]), return_trace=True)
    assert torch.isfinite(out.logits).all()
    assert all(torch.isfinite(v.float()).all() for v in out.trace.values())


def test_trace_names_and_shapes() -> None:
    model = tiny(n_layers=2)
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    out = model(ids, ids != 0, return_trace=True)
    assert out.logits.shape == (2, 3)
    assert TRACE <= set(out.trace)
    assert out.trace["attention"].shape == (2, 4, 4, 4)
    assert out.trace["fc1"].shape == (2, 4, 32)
    assert out.trace["vmask_keep"].shape == (2, 4)
    assert {"blocks.1.fc1", "blocks.1.attention"} <= set(out.trace)
    assert out.trace["fc1"] is out.trace["blocks.0.fc1"]
    assert model(ids, ids != 0).trace is None


def test_attention_ignores_padded_keys_and_rows_sum_to_one() -> None:
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    a = tiny().eval()(ids, ids != 0, return_trace=True).trace["attention"]
    assert (a[..., 3:] == 0).all()
    torch.testing.assert_close(a.sum(-1), torch.ones(1, 4, 5))


def test_vmask_output_is_zero_at_padding_and_keep_is_hard_in_training() -> None:
    model = tiny().train()
    ids = torch.tensor([[5, 6, 7, 0]])
    trace = model(ids, ids != 0, return_trace=True).trace
    assert (trace["vmask"][0, 3] == 0).all()
    keep = trace["vmask_keep"][0, :3]
    assert set(keep.tolist()) <= {0.0, 1.0}
    model.eval()
    trace = model(ids, ids != 0, return_trace=True).trace
    torch.testing.assert_close(trace["vmask_keep"], trace["vmask_prob"] * (ids != 0))


def test_vmask_gradient_flows_through_hard_sample() -> None:
    model = tiny().train()
    ids = torch.tensor([[5, 6, 7, 8]])
    model(ids, ids != 0).logits.sum().backward()
    assert model.vmask.out.weight.grad is not None and model.vmask.out.weight.grad.abs().sum() > 0


def test_padding_embedding_row_is_zero_and_positions_have_expected_norm() -> None:
    model = tiny()
    assert (model.embedding.weight[0] == 0).all()
    pe = sinusoidal_positions(10, 16)
    torch.testing.assert_close(pe.norm(dim=-1), torch.full((10,), (16 / 2) ** 0.5))


def test_texts_longer_than_the_position_table_still_run() -> None:
    model = SAFRTransformer(20, 2, d_model=8, n_heads=2, d_ff=16, vmask_hidden=4, max_len=4).eval()
    ids = torch.randint(2, 20, (1, 9))
    assert model(ids, ids != 0).logits.shape == (1, 2)


def test_dropout_drops_a_fraction_p_and_rescales_the_rest() -> None:
    from safr_lightning.model.transformer import Dropout

    torch.manual_seed(0)
    drop = Dropout(0.25)
    x = torch.ones(200_000, requires_grad=True)
    y = drop(x)
    dropped = float((y == 0).float().mean())
    assert abs(dropped - 0.25) < 0.005
    torch.testing.assert_close(torch.unique(y), torch.tensor([0.0, 1 / 0.75]))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # d(x * scale)/dx = scale
    assert drop.eval()(x) is x


def test_gradients_are_bitwise_reproducible_whatever_the_memory_layout() -> None:
    """Same inputs, same seed -> the same gradients, bit for bit (CPU), even when the allocator
    hands out differently aligned memory: no non-deterministic kernel (e.g. index_put_) in backward."""

    def grads(junk: int) -> list[torch.Tensor]:
        _ = [torch.empty(int(n)) for n in range(1001, 1001 + 37 * junk, 37)]  # shift later allocations
        torch.manual_seed(0)
        model = SAFRTransformer(500, 2, d_model=256, n_heads=8, d_ff=256, vmask_hidden=256).train()
        ids = torch.randint(2, 300, (32, 20))  # SST-2-like batch: many repeated tokens
        out = model(ids, torch.ones_like(ids, dtype=torch.bool), return_trace=True)
        (out.logits.square().sum() + out.trace["vmask"].sum()).backward()
        return [p.grad.clone() for p in model.parameters()]

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the non-deterministic kernels are the multi-threaded ones
    try:
        first = grads(0)
        for junk in (3, 11):
            assert all(torch.equal(a, b) for a, b in zip(first, grads(junk), strict=True))
    finally:
        torch.set_num_threads(threads)
