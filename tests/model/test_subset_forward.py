from __future__ import annotations

import pytest
import torch

from safr_lightning.metrics.deletion import pack
from safr_lightning.model.subset_forward import DeletionForward, supports
from safr_lightning.model.transformer import SAFRTransformer
from tests import reference as ref

LENGTHS = [9, 1, 2, 5, 7, 3]


def model_and_batch(vmask: bool, n_layers: int) -> tuple[SAFRTransformer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = SAFRTransformer(60, 3, d_model=32, n_heads=4, d_ff=64, n_layers=n_layers, vmask=vmask, vmask_hidden=16)
    mask = ref.random_mask(LENGTHS)
    ids = torch.randint(2, 60, mask.shape, generator=torch.Generator().manual_seed(1)) * mask
    return model.eval(), ids, mask


@pytest.mark.parametrize(("vmask", "n_layers"), [(True, 1), (False, 1), (True, 2)])
def test_fast_logits_equal_rerunning_the_model_on_the_shortened_batch(vmask: bool, n_layers: int) -> None:
    model, ids, mask = model_and_batch(vmask, n_layers)
    g = torch.Generator().manual_seed(2)
    variants = 5
    keep = (torch.rand(variants, *mask.shape, generator=g) < 0.6) & mask
    keep[:, torch.arange(len(LENGTHS)), 0] = True  # every copy keeps a token
    keep[0] = mask  # one copy is the text itself
    source, new_mask = pack(keep.reshape(-1, mask.shape[1]))
    rows = torch.arange(len(LENGTHS)).repeat(variants)
    new_ids = torch.where(new_mask, ids[rows].gather(1, source), 0)
    with torch.no_grad():
        trace = model(ids, mask, return_trace=True).trace
        forward = DeletionForward(model)
        fast = forward(forward.prepare(trace), rows, source, new_mask)
        plain = model(new_ids, new_mask).logits
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-5)


PAPER = {"pad_embedding": "trained", "pool_over_pad": True, "init": "paper"}


@pytest.mark.parametrize(("vmask", "n_layers"), [(True, 1), (False, 1), (True, 2)])
def test_with_the_papers_pooling_fast_logits_equal_the_model_on_copies_repadded_to_max_len(
    vmask: bool, n_layers: int
) -> None:
    """Every PAD position of a re-padded copy counts; copies of one token and copies at max_len."""
    torch.manual_seed(0)
    max_len = 12
    model = SAFRTransformer(60, 3, d_model=32, n_heads=4, d_ff=64, n_layers=n_layers, vmask=vmask,
                            vmask_hidden=16, fixed_length=max_len, **PAPER).eval()  # fmt: skip
    lengths = [12, 1, 2, 5, 7, 3]
    mask = ref.random_mask(lengths, max_len)
    ids = torch.randint(2, 60, mask.shape, generator=torch.Generator().manual_seed(1)) * mask
    g = torch.Generator().manual_seed(2)
    keep = (torch.rand(4, *mask.shape, generator=g) < 0.5) & mask
    keep[:, torch.arange(len(lengths)), 0] = True  # every copy keeps a token
    keep[0] = mask  # the texts themselves (one at max_len)
    keep[1] = mask & (torch.arange(max_len) == 0)  # one token each
    source, new_mask = pack(keep.reshape(-1, max_len))
    rows = torch.arange(len(lengths)).repeat(4)
    new_ids = torch.where(new_mask, ids[rows].gather(1, source), 0)
    with torch.no_grad():
        trace = model(ids, mask, return_trace=True).trace
        forward = DeletionForward(model)
        fast = forward(forward.prepare(trace), rows, source, new_mask)
        plain = model(new_ids, new_mask).logits  # the model pads each copy back to max_len
        model.skip_pad_keys = False
        plainest = model(new_ids, new_mask).logits  # and attends over every (masked) PAD key
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-5)
    torch.testing.assert_close(plain, plainest, rtol=0, atol=1e-5)
    assert forward.tokens_per_copy(3) == max_len


def test_only_the_safr_transformer_is_supported() -> None:
    assert supports(model_and_batch(True, 1)[0])
    assert not supports(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError):
        DeletionForward(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
