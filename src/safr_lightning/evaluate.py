"""Evaluate a checkpoint: ``python -m safr_lightning.evaluate ckpt_path=... [dataset=...] [srs.scorer=...]``.

Loads a checkpoint written by ``train`` (model, tokenizer and the run's config travel inside it),
encodes the run's dataset (or ``dataset=...``) with the checkpoint's own tokenizer, runs the
deletion evaluation of DESIGN §7 over a split, prints a table and writes ``evaluation.json``
(the shape of results.json: identity, ``test`` block, ``timing``). A user error is one line on
stderr with exit code 2.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from safr_lightning.analysis.srs import SRSSettings, check_scorer, curve_rows, evaluate_srs
from safr_lightning.checkpoints import (
    CHECKPOINT_DIR,
    load_checkpoint_file,
    resolve_checkpoint,
    run_dir_of,
    tested_checkpoint,
)
from safr_lightning.cli import UserErrorExit, quiet_known_warnings, run_cli
from safr_lightning.config import DataConfig, DatasetConfig, SRSConfig, register_configs, validate_srs
from safr_lightning.data.datamodule import SAFRDataModule
from safr_lightning.data.tokenizer import UNK_ID
from safr_lightning.errors import ConfigError, SAFRError
from safr_lightning.loggers import log_evaluation
from safr_lightning.module import SAFRModule
from safr_lightning.paths import CONFIG_DIR
from safr_lightning.results import read_record, run_identity, write_results
from safr_lightning.rundir import check_writable

log = logging.getLogger("safr_lightning.evaluate")
SPLITS = {"test": "test", "validation": "val"}  # split -> results.json block name

register_configs()


def resolve_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"invalid config: device={name!r}; allowed: cpu | cuda | cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"invalid config: device={name!r}; no CUDA device is available here (use device=cpu)")
    return device


def load_module(ckpt: Path, device: torch.device) -> SAFRModule:
    load_checkpoint_file(ckpt, "ckpt_path")  # a truncated or foreign file: one line saying so
    try:
        module = SAFRModule.load_from_checkpoint(ckpt, map_location=device)
    except Exception as exc:  # a truncated or foreign file: say which, in one line
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise SAFRError(f"could not load checkpoint {ckpt}: {reason}") from exc
    return module.eval()


def _onto_schema(schema: type, values: dict[str, Any] | DictConfig) -> DictConfig:
    """``values`` over the schema's defaults; keys of other project versions are kept, not refused."""
    node = OmegaConf.structured(schema)
    OmegaConf.set_struct(node, False)
    return OmegaConf.merge(node, values)


def checkpoint_kind(ckpt: Path) -> str | None:
    """``best`` or ``last`` when ``ckpt`` is that file of a run's ``checkpoints/``, else None."""
    if ckpt.parent.name != CHECKPOINT_DIR:
        return None
    return {"best.ckpt": "best", "last.ckpt": "last"}.get(ckpt.name)


def _is_runs_own(ckpt: Path) -> bool:
    """Is ``ckpt`` the checkpoint the run's own test used (results.json's ``checkpoint``)?"""
    run_dir = run_dir_of(ckpt)
    try:
        recorded = tested_checkpoint(run_dir)
    except SAFRError:
        return True  # nothing to tell it apart from
    return recorded is None or (run_dir / recorded).resolve() == ckpt.resolve()


def default_output_name(cfg: DictConfig, ckpt: Path | None = None) -> str:
    """``evaluation.json`` for the paper's setting; a tagged name otherwise, so runs do not overwrite.

    A checkpoint other than the one the run tested (``best.ckpt`` of a run that tested ``last``)
    is tagged with its name: ``evaluation_best.json``.
    """
    tags = []
    if ckpt is not None and not _is_runs_own(ckpt):
        tags.append(ckpt.stem)
    if cfg.srs.scorer != "capacity" or cfg.srs.layer != "fc1":
        tags.append(cfg.srs.scorer if cfg.srs.scorer != "capacity" else f"capacity-{cfg.srs.layer}")
    if cfg.split != "test":
        tags.append(cfg.split)
    if cfg.dataset is not None:
        tags.append(cfg.dataset.name)
    if cfg.limit is not None:
        tags.append(f"first{cfg.limit}")
    # Every setting that changes the numbers is in the name: a partial curve never replaces a full one.
    defaults = SRSConfig()
    ks = [float(k) for k in cfg.srs.ks]
    if ks != [float(k) for k in defaults.ks]:
        tags.append("k" + "-".join(f"{k:g}" for k in ks))
    if cfg.srs.random_draws != defaults.random_draws:
        tags.append(f"draws{cfg.srs.random_draws}")
    if cfg.srs.seed != defaults.seed:
        tags.append(f"seed{cfg.srs.seed}")
    return "evaluation" + "".join(f"_{t}" for t in tags) + ".json"


def _training_wandb(run_dir: Path) -> dict[str, Any] | None:
    """The training run's W&B identity (results.json's ``wandb`` block), if it logged to W&B."""
    record = read_record(run_dir)
    return record.wandb if record else None


def checkpoint_split(
    module: SAFRModule, ckpt: Path, dataset: Any, split: str, limit: int | None, eval_batch_size: int | None
) -> tuple[SAFRDataModule, DictConfig, DictConfig]:
    """The ``split`` a checkpoint is evaluated on, set up: its training data unless ``dataset`` names
    another, tokenized with its own vocabulary. Returns ``(datamodule, dataset config, run config)``."""
    run_config = OmegaConf.create(module.hparams.get("run_config") or {})
    if dataset is None and "dataset" not in run_config:
        raise SAFRError(
            f"checkpoint {ckpt} carries no run config; name the data with dataset=sst2|imdb|synthetic|local"
        )
    dataset_cfg = _onto_schema(DatasetConfig, dataset if dataset is not None else run_config.dataset)
    if limit is not None:  # otherwise the run's own limit (usually none) stands
        dataset_cfg[f"limit_{'test' if split == 'test' else 'val'}"] = limit
    data_cfg = _onto_schema(DataConfig, run_config.get("data") or {})
    if eval_batch_size is not None:
        data_cfg.eval_batch_size = eval_batch_size
    datamodule = SAFRDataModule(
        dataset_cfg, data_cfg, seed=int(run_config.get("seed", 0)), tokenizer=module.tokenizer, pad_to=module.pad_to
    )
    if int(dataset_cfg.num_classes) != int(module.hparams.num_classes):
        raise ConfigError(
            f"invalid config: dataset.num_classes={dataset_cfg.num_classes}, but the checkpoint's model has "
            f"{module.hparams.num_classes} classes"
        )
    datamodule.setup("test")
    _warn_unknown_tokens(datamodule.splits["test" if split == "test" else "validation"].tokens, ckpt)
    return datamodule, dataset_cfg, run_config


def run_evaluation(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path``; write and return evaluation.json's content."""
    validate_srs(cfg.srs)
    if cfg.split not in SPLITS:
        raise ConfigError(f"invalid config: split={cfg.split!r}; allowed: {' | '.join(SPLITS)}")
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"invalid config: limit={cfg.limit!r}; allowed: null or an integer >= 1")
    if cfg.eval_batch_size is not None and cfg.eval_batch_size < 1:
        raise ConfigError(f"invalid config: eval_batch_size={cfg.eval_batch_size!r}; allowed: an integer >= 1")
    if cfg.logger not in (None, "none", "wandb"):
        raise ConfigError(f"invalid config: logger={cfg.logger!r}; allowed: null (as the training run) | none | wandb")
    quiet_known_warnings()
    ckpt = resolve_checkpoint(cfg.ckpt_path)
    output = Path(cfg.output) if cfg.output else run_dir_of(ckpt) / default_output_name(cfg, ckpt)
    check_writable(output.parent, f"the evaluation ({output.name})")  # before minutes of work, not after
    if output.is_dir():
        raise ConfigError(f"invalid config: output={str(output)!r} is a directory; give a file, e.g. {output}/e.json")
    device = resolve_device(cfg.device)
    module = load_module(ckpt, device)
    settings = SRSSettings.from_config(cfg.srs)
    check_scorer(module.model, settings)

    datamodule, dataset_cfg, run_config = checkpoint_split(
        module, ckpt, cfg.dataset, cfg.split, cfg.limit, cfg.eval_batch_size
    )

    start = time.perf_counter()
    result = evaluate_srs(module.model, datamodule.loader(cfg.split), settings)
    seconds = time.perf_counter() - start

    identity: dict[str, Any] = {}
    if "dataset" in run_config and "model" in run_config:
        if (tested := checkpoint_kind(ckpt)) is not None:
            # Which weights these numbers are of: the fidelity mode says test_on=best/last.
            OmegaConf.update(run_config, "fidelity.test_on", tested, force_add=True)
        identity = run_identity(run_config)
        if identity["dataset"] != dataset_cfg.name:
            identity["train_dataset"] = identity["dataset"]
    identity["dataset"] = dataset_cfg.name
    evaluation = {
        **identity,
        "status": "ok",
        "checkpoint": str(ckpt),
        "split": cfg.split,
        SPLITS[cfg.split]: result,
        "timing": {"srs_eval_s": seconds},
    }
    path = write_results(output.parent, evaluation, name=output.name)
    trained = _training_wandb(run_dir_of(ckpt))
    if cfg.logger == "wandb" or (cfg.logger is None and trained is not None):
        log_evaluation(run_dir_of(ckpt), trained or {}, evaluation, path)
    print(format_table(evaluation, SPLITS[cfg.split]))
    print(f"wrote {path} ({seconds:.1f} s)")
    return evaluation


# Above this share of unknown tokens the checkpoint's vocabulary hardly covers the data.
UNKNOWN_WARN = 0.5


def _warn_unknown_tokens(tokens: torch.Tensor, ckpt: Path) -> None:
    """Say so when the data is mostly outside the checkpoint's vocabulary (another language, casing)."""
    share = float((tokens == UNK_ID).float().mean()) if tokens.numel() else 0.0
    if share > UNKNOWN_WARN:
        log.warning(
            "%.0f%% of the tokens are unknown to %s's vocabulary: is this the data it was trained on?",
            100 * share, ckpt,
        )  # fmt: skip


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(evaluation: dict[str, Any], block: str) -> str:
    """A readable summary of one evaluation (what the CLI prints)."""
    r = evaluation[block]
    scorer = r["scorer"] + (f" at {r['layer']}" if r["scorer"] == "capacity" else "")
    lines = [
        f"checkpoint  {evaluation['checkpoint']}",
        f"data        {evaluation['dataset']} {evaluation['split']}, {r['n']} texts",
        f"scorer      {scorer}; random baseline: mean of {r['random_draws']} seeded draws",
        f"Acc_S       {_num(r['acc'], '.4f')}",
        "",
    ]
    columns, rows = curve_rows(r)
    names = {"acc_capacity": "acc_scored", "comprehensiveness": "compreh.", "sufficiency": "suffic.",
             "rationale_precision": "precision", "rationale_precision_random": "prec.random"}  # fmt: skip
    header = [names.get(c, c) for c in columns]
    lines.append("  ".join(f"{h:>11s}" for h in header))
    for row in rows:
        cells = [f"{row[0]:>11g}"]
        for name, value in zip(columns[1:], row[1:], strict=True):
            cells.append(f"{_num(value, '.2f' if name in ('srs', 'gap') else '.4f'):>11s}")
        lines.append("  ".join(cells))
    lines.append("")
    lines.append(
        f"AOPC        comprehensiveness {_num(r['aopc_comprehensiveness'], '.4f')}"
        f"  sufficiency {_num(r['aopc_sufficiency'], '.4f')}"
    )
    cap = r["capacity"]
    lines.append(
        f"capacity    ({r['layer']}) all {_num(cap['all'], '.4f')}  important (top 30% by VMASK) "
        f"{_num(cap['important'], '.4f')}  rest {_num(cap['rest'], '.4f')}"
    )
    if "planted_fraction" in r:
        lines.append(f"planted     {_num(r['planted_fraction'], '.4f')} of all tokens")
    lines.append("acc_scored = Acc after deleting the top-k% tokens by the scorer; srs, gap in points")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def _hydra_main(cfg: DictConfig) -> dict[str, Any] | None:
    try:
        return run_evaluation(cfg)
    except SAFRError as exc:
        raise UserErrorExit(exc) from exc


def main() -> Any:
    """``python -m safr_lightning.evaluate [--verbose] ckpt_path=... key=value ...``."""
    return run_cli(_hydra_main)


if __name__ == "__main__":
    main()
