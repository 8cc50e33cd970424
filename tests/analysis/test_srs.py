from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import pytest
import torch
from omegaconf import open_dict

from safr_lightning.analysis.srs import SRSSettings, curve_rows, evaluate_srs, flat_metrics
from safr_lightning.errors import ConfigError
from safr_lightning.experiment import build_datamodule
from safr_lightning.metrics.scorers import capacity_scores, random_scores
from safr_lightning.model import subset_forward
from safr_lightning.model.transformer import SAFRTransformer
from tests import reference as ref

LENGTHS = [[8, 1, 2, 5, 6, 3, 4, 7], [2, 9, 1, 4, 3, 6, 5, 8]]  # two batches; padding, 1- and 2-token texts
KS = [10.0, 30.0, 50.0]


def tiny_model(vmask: bool = True, seed: int = 0) -> SAFRTransformer:
    torch.manual_seed(seed)
    model = SAFRTransformer(50, 2, d_model=32, n_heads=4, d_ff=64, vmask=vmask, vmask_hidden=16)
    with torch.no_grad():  # a larger classifier so that predictions differ from text to text
        model.classifier.weight.mul_(8)
    return model.eval()


def make_batches(seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    batches, start = [], 0
    for lengths in LENGTHS:
        mask = ref.random_mask(lengths)
        ids = torch.randint(2, 50, mask.shape, generator=g) * mask
        index = torch.arange(start, start + len(lengths))
        labels = torch.randint(2, (len(lengths),), generator=g)
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": labels, "index": index})
        start += len(lengths)
    return batches


@pytest.mark.parametrize("vmask", [True, False])
def test_evaluation_equals_text_by_text_reference(vmask: bool) -> None:
    model, batches = tiny_model(vmask), make_batches()
    settings = SRSSettings(ks=tuple(KS), random_draws=2, seed=7)
    result = evaluate_srs(model, batches, settings)

    expected: dict[str, dict[str, float]] = {}
    n_total = sum(len(b["labels"]) for b in batches)
    for batch in batches:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        with torch.no_grad():
            trace = model(ids, mask, return_trace=True).trace
        draws = [random_scores(batch["index"], mask, 7, d) for d in range(2)]
        part = ref.srs_by_text(model, ids, mask, batch["labels"], capacity_scores(trace), draws, KS)
        weight = len(batch["labels"]) / n_total
        for name, value in part.items():
            if isinstance(value, dict):
                bucket = expected.setdefault(name, {})
                for key, v in value.items():
                    bucket[key] = bucket.get(key, 0.0) + weight * v
            else:
                expected[name] = expected.get(name, 0.0) + weight * value  # type: ignore[assignment]
    assert result["acc"] == pytest.approx(expected["acc"])
    for name in ("acc_capacity", "acc_random", "comprehensiveness", "sufficiency"):
        assert result[name] == pytest.approx(expected[name], abs=1e-5), name
    for key in ("10", "30", "50"):
        assert result["srs"][key] == pytest.approx((expected["acc"] - expected["acc_capacity"][key]) * 100)
        assert result["gap"][key] == pytest.approx((expected["acc_random"][key] - expected["acc_capacity"][key]) * 100)
    assert result["aopc_comprehensiveness"] == pytest.approx(sum(expected["comprehensiveness"].values()) / 3, abs=1e-6)
    assert result["n"] == n_total and result["ks"] == [10, 30, 50]
    assert len({round(v, 6) for v in result["acc_capacity"].values()} | {result["acc"]}) > 1, "trivial test data"


@pytest.mark.parametrize("vmask", [True, False])
def test_capacity_statistics_equal_text_by_text_reference(vmask: bool) -> None:
    model, batches = tiny_model(vmask), make_batches()
    result = evaluate_srs(model, batches, SRSSettings(ks=(30.0,), random_draws=1))
    ids = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(row) for b in batches for row in ref.rows_as_lists(b["input_ids"], b["attention_mask"])],
        batch_first=True,
    )
    expected = ref.capacity_stats_by_text(model, ids, ids != 0)
    assert result["capacity"]["all"] == pytest.approx(expected["all"], abs=1e-5)
    if vmask:
        assert result["capacity"]["important"] == pytest.approx(expected["important"], abs=1e-5)
        assert result["capacity"]["rest"] == pytest.approx(expected["rest"], abs=1e-5)
    else:  # no VMASK, no "important" tokens
        assert result["capacity"]["important"] is None and result["capacity"]["rest"] is None


def test_model_whose_logits_ignore_the_input_has_srs_and_comprehensiveness_zero() -> None:
    model = tiny_model()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.3, -0.2]))
    result = evaluate_srs(model, make_batches(), SRSSettings(ks=tuple(KS)))
    for key in ("10", "30", "50"):
        assert result["srs"][key] == 0.0 and result["gap"][key] == 0.0
        assert result["acc_capacity"][key] == result["acc"] == result["acc_random"][key]
        assert result["comprehensiveness"][key] == pytest.approx(0.0, abs=1e-7)
        assert result["sufficiency"][key] == pytest.approx(0.0, abs=1e-7)


def test_fast_path_and_model_rerun_give_identical_results() -> None:
    model, batches = tiny_model(), make_batches(seed=3)
    settings = SRSSettings(ks=tuple(KS), max_tokens=20)  # tiny chunks: several forward calls per group
    fast = evaluate_srs(model, batches, settings)
    plain = evaluate_srs(model, batches, SRSSettings(ks=tuple(KS), fast=False))
    for name in ("acc", "acc_capacity", "acc_random", "srs", "gap"):
        assert fast[name] == plain[name], name
    for name in ("comprehensiveness", "sufficiency"):
        assert fast[name] == pytest.approx(plain[name], abs=1e-6)


def test_a_wrong_fast_path_is_caught_and_replaced_by_the_model_forward(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model, batches = tiny_model(), make_batches()
    settings = SRSSettings(ks=tuple(KS))
    expected = evaluate_srs(model, batches, SRSSettings(ks=tuple(KS), fast=False))
    real_call = subset_forward.DeletionForward.__call__
    monkeypatch.setattr(subset_forward.DeletionForward, "__call__", lambda self, *a: real_call(self, *a) + 0.01)
    with caplog.at_level(logging.WARNING):
        result = evaluate_srs(model, batches, settings)
    assert "fast path differs" in caplog.text
    assert result == expected


def test_results_do_not_depend_on_batching() -> None:
    model, batches = tiny_model(), make_batches()
    together = {key: torch.cat([torch.nn.functional.pad(b[key], (0, 9 - b[key].shape[1])) if b[key].dim() == 2
                                else b[key] for b in batches]) for key in batches[0]}  # fmt: skip
    settings = SRSSettings(ks=tuple(KS))
    one, two = evaluate_srs(model, [together], settings), evaluate_srs(model, batches, settings)
    for name in ("acc", "acc_capacity", "acc_random", "srs", "gap"):
        assert one[name] == two[name], name


def test_model_is_left_in_the_mode_it_was_in() -> None:
    model = tiny_model().train()
    evaluate_srs(model, make_batches(), SRSSettings(ks=(30.0,)))
    assert model.training


def test_vmask_scorer_on_a_model_without_vmask_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"srs\.scorer='vmask'"):
        evaluate_srs(tiny_model(vmask=False), make_batches(), SRSSettings(scorer="vmask"))


@pytest.fixture
def synthetic_test_batches(make_cfg: Callable) -> tuple[int, list[dict[str, torch.Tensor]]]:
    cfg = make_cfg(
        "dataset.synthetic.min_planted=3",
        "dataset.synthetic.max_planted=3",
        "dataset.synthetic.test_size=400",
        "data.eval_batch_size=100",
    )
    with open_dict(cfg):
        cfg.dataset.synthetic.max_words = 24  # n <= 27 tokens: n_10 <= 3 = the planted count
    datamodule = build_datamodule(cfg)
    datamodule.setup("test")
    return datamodule.tokenizer.get_vocab_size(), list(datamodule.test_dataloader())


def test_rationale_precision_of_an_oracle_is_one_and_of_random_the_planted_fraction(
    synthetic_test_batches: tuple[int, list[dict[str, torch.Tensor]]],
) -> None:
    vocab, batches = synthetic_test_batches
    model = SAFRTransformer(vocab, 2, d_model=16, n_heads=2, d_ff=32, vmask_hidden=8).eval()

    def oracle(trace: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["rationale"].float() + torch.rand(batch["rationale"].shape) * 0.5  # planted first

    result = evaluate_srs(model, batches, SRSSettings(ks=(10.0, 30.0, 50.0)), score_fn=oracle)
    assert result["scorer"] == "custom"
    assert result["rationale_precision"]["10"] == 1.0
    planted = result["planted_fraction"]
    assert 0.05 < planted < 0.5
    for key in ("10", "30", "50"):
        assert result["rationale_precision_random"][key] == pytest.approx(planted, abs=0.03)
        assert result["rationale_precision"][key] >= result["rationale_precision_random"][key]


def test_flat_metrics_and_curve_rows_name_every_k() -> None:
    result = evaluate_srs(tiny_model(), make_batches(), SRSSettings(ks=(10.0, 30.0), random_draws=1))
    flat = flat_metrics(result, "val")
    assert {
        "val/srs@30",
        "val/acc_capacity@10",
        "val/acc_random@30",
        "val/gap@30",
        "val/comprehensiveness@30",
        "val/sufficiency@10",
        "val/aopc_comprehensiveness",
        "val/capacity_important",
        "val/acc",
    } <= set(flat)
    assert flat["val/srs@30"] == result["srs"]["30"]
    columns, rows = curve_rows(result)
    assert columns[:4] == ["k", "acc_capacity", "acc_random", "srs"] and [r[0] for r in rows] == [10.0, 30.0]


PAPER_LEN = 12


def paper_model(vmask: bool = True, seed: int = 0) -> SAFRTransformer:
    """fidelity=paper: padded to PAPER_LEN, PAD a trained token, pooling over every position."""
    torch.manual_seed(seed)
    paper = {"fixed_length": PAPER_LEN, "pad_embedding": "trained", "pool_over_pad": True, "init": "paper"}
    model = SAFRTransformer(50, 2, d_model=32, n_heads=4, d_ff=64, vmask=vmask, vmask_hidden=16, **paper)
    with torch.no_grad():
        model.classifier.weight.mul_(8)
    return model.eval()


@pytest.mark.parametrize("vmask", [True, False])
def test_paper_mode_evaluation_equals_reference_that_repads_every_copy_to_max_len(vmask: bool) -> None:
    """The paper's code would pad every shortened text back to max_len: PAD is part of its model."""
    model, batches = paper_model(vmask), make_batches()
    assert subset_forward.supports(model)  # PAD positions' part computed once per position
    settings = SRSSettings(ks=tuple(KS), random_draws=2, seed=7)
    result = evaluate_srs(model, batches, settings)
    plain = evaluate_srs(model, batches, dataclasses.replace(settings, fast=False))  # the model's own forward
    for name in ("acc", "acc_capacity", "acc_random", "srs", "capacity"):
        assert result[name] == plain[name], name
    assert result["comprehensiveness"] == pytest.approx(plain["comprehensiveness"], abs=1e-6)
    n_total = sum(len(b["labels"]) for b in batches)
    acc, acc_capacity = 0.0, dict.fromkeys(("10", "30", "50"), 0.0)
    comprehensiveness = dict.fromkeys(("10", "30", "50"), 0.0)
    for batch in batches:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        with torch.no_grad():
            trace = model(ids, mask, return_trace=True).trace
        wide = torch.nn.functional.pad(mask, (0, PAPER_LEN - mask.shape[1]))
        draws = [random_scores(batch["index"], wide, 7, d)[:, : mask.shape[1]] for d in range(2)]
        scores = capacity_scores(trace)[:, : mask.shape[1]]
        part = ref.srs_by_text(model, ids, mask, batch["labels"], scores, draws, KS, pad_to=PAPER_LEN)
        weight = len(batch["labels"]) / n_total
        acc += weight * part["acc"]
        for key in acc_capacity:
            acc_capacity[key] += weight * part["acc_capacity"][key]
            comprehensiveness[key] += weight * part["comprehensiveness"][key]
    assert result["acc"] == pytest.approx(acc)
    assert result["acc_capacity"] == pytest.approx(acc_capacity, abs=1e-6)
    assert result["comprehensiveness"] == pytest.approx(comprehensiveness, abs=1e-5)


def test_fixed_padding_without_pad_pooling_keeps_the_fast_path_and_the_exact_numbers() -> None:
    exact = tiny_model()
    torch.manual_seed(0)
    fixed = SAFRTransformer(50, 2, d_model=32, n_heads=4, d_ff=64, vmask_hidden=16, fixed_length=PAPER_LEN)
    fixed.load_state_dict(exact.state_dict())
    fixed.eval()
    assert subset_forward.supports(fixed)
    settings = SRSSettings(ks=tuple(KS))
    a, b = evaluate_srs(exact, make_batches(), settings), evaluate_srs(fixed, make_batches(), settings)
    for name in ("acc", "acc_capacity", "acc_random", "srs"):
        assert a[name] == b[name], name
