"""Explain texts with a trained model: ``python -m safr_lightning.explain ckpt_path=... text="..."``.

For each text it prints every token with its capacity, its VMASK keep probability and the
prediction, and writes the token graph (Figure 2b) and the across-layer figures (4, 5) as PNG and
SVG; the run's deletion curve (Figure 3) when the run has an SRS evaluation; and, with
``split=test``, important vs other tokens over that split (Figures 2a, 2c). Files go to
``<run dir>/explain/`` unless ``out_dir=...``. A user error is one line on stderr and exit code 2.

``text=`` takes the rest of its argument literally (commas and all), so
``text="preposterous and tedious , sonny is spiked ..."`` works as typed in a shell.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from safr_lightning.analysis.allocation import (
    LAYER_TITLES,
    GroupStatistics,
    TextProfile,
    group_statistics,
    profile_texts,
    sample_batches,
)
from safr_lightning.analysis.figures import (
    curve_figure,
    group_figure,
    label_names,
    prediction_line,
    run_label,
    save_all,
    text_figures,
)
from safr_lightning.checkpoints import load_checkpoint_file, resolve_checkpoint, run_dir_of
from safr_lightning.cli import UserErrorExit, quiet_known_warnings, run_cli
from safr_lightning.config import register_configs, validate_figures
from safr_lightning.errors import ConfigError, SAFRError
from safr_lightning.module import SAFRModule
from safr_lightning.paths import CONFIG_DIR
from safr_lightning.plots import DeletionCurves, curves_from_results
from safr_lightning.results import RESULTS_FILE, read_record
from safr_lightning.rundir import check_writable

log = logging.getLogger("safr_lightning.explain")
EVALUATION_FILE = "evaluation.json"
UNKNOWN_MARKER = "[unk]"

register_configs()


def collect_texts(cfg: DictConfig) -> list[str]:
    """``text``, then ``texts``, then the lines of ``text_file``; an empty one is an error naming it."""
    texts: list[tuple[str, str]] = []
    if cfg.text is not None:
        texts.append(("text", str(cfg.text)))
    texts += [(f"texts[{k}]", str(t)) for k, t in enumerate(cfg.texts)]
    if cfg.text_file:
        path = Path(cfg.text_file)
        if not path.is_file():
            raise ConfigError(f"invalid config: text_file={cfg.text_file!r}; no such file")
        try:
            content = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise ConfigError(f"invalid config: text_file={cfg.text_file!r} is not UTF-8 text (one per line)") from None
        lines = [line for line in content.splitlines() if line.strip()]
        if not lines:
            raise ConfigError(f"invalid config: text_file={cfg.text_file!r} has no non-blank line")
        texts += [(f"{path.name}:{k + 1}", line) for k, line in enumerate(lines)]
    if not texts:
        raise ConfigError('nothing to explain: give text="...", texts=[...] or text_file=<one text per line>')
    for where, text in texts:
        if not text.strip():
            raise ConfigError(f"invalid config: {where} is empty; a text needs at least one word")
    return [text for _, text in texts]


def load_module(checkpoint: Path, device: str) -> SAFRModule:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"invalid config: device={device!r}; no CUDA device here (use device=cpu)")
    load_checkpoint_file(checkpoint, "ckpt_path")  # a truncated or foreign file: one line saying so
    try:
        module = SAFRModule.load_from_checkpoint(checkpoint, map_location=torch.device(device))
    except Exception as exc:
        raise SAFRError(f"could not load checkpoint {checkpoint}: {type(exc).__name__}: {exc}") from exc
    return module.eval()


def deletion_curves_of(run_dir: Path) -> tuple[DeletionCurves | None, str]:
    """The run's deletion curve from ``evaluation.json`` or ``results.json`` (its ``test`` part), and
    where it came from, or ``(None, why not)``."""
    for name in (EVALUATION_FILE, RESULTS_FILE):
        path = run_dir / name
        record = read_record(path) if path.is_file() else None
        section = record.test if record is not None else None
        curves = curves_from_results(section) if section is not None else None
        if curves is not None:
            return curves, str(path)
    return (
        None,
        f"no SRS evaluation (test.acc_capacity) in {run_dir / EVALUATION_FILE} or {run_dir / RESULTS_FILE}",
    )


def format_profile(index: int, profile: TextProfile, labels: Sequence[str]) -> str:
    """The printout of one text: the prediction, then one row per token (capacity, keep, token).

    The token comes last so that a row always splits into the same columns; an unknown word ends
    with ``[unk]``.
    """
    layer = LAYER_TITLES.get(profile.graph_layer, profile.graph_layer)
    capacity = profile.capacity[profile.graph_layer]
    lines = [f"[{index}] {profile.text}", f"    prediction: {prediction_line(profile, labels)}"]
    if profile.tokens.truncated:
        lines.append(f"    note: truncated to the model's {len(profile.tokens.words)} tokens")
    lines.append(f"    {'#':>4}  {layer + ' capacity':>14}  {'VMASK keep':>10}  token")
    for k, (word, unknown) in enumerate(zip(profile.tokens.words, profile.tokens.unknown, strict=True)):
        marker = f"  {UNKNOWN_MARKER}" if unknown else ""
        lines.append(f"    {k + 1:>4}  {capacity[k]:>14.4f}  {profile.keep[k]:>10.4f}  {word}{marker}")
    return "\n".join(lines)


def group_data(module: SAFRModule, split: str, max_texts: int, layer: str) -> tuple[GroupStatistics, str]:
    """Important-vs-rest statistics over ``split`` of the dataset the checkpoint was trained on."""
    from safr_lightning.data.datamodule import SAFRDataModule

    run_config = module.hparams.get("run_config")
    if not run_config:
        raise SAFRError("split=... needs the checkpoint's run config (its dataset); this checkpoint has none")
    cfg = OmegaConf.create(run_config)
    datamodule = SAFRDataModule(
        cfg.dataset, cfg.data, seed=int(cfg.seed), tokenizer=module.tokenizer, pad_to=module.pad_to
    )
    datamodule.setup("test")
    if split not in datamodule.splits:
        raise ConfigError(f"invalid config: split={split!r}; allowed: {' | '.join(datamodule.splits)}")
    batches = sample_batches(datamodule.splits[split], int(cfg.data.eval_batch_size), max_texts, int(cfg.seed))
    stats = group_statistics(module, batches, layer=layer)
    return stats, f"{cfg.dataset.name} {split}"


def run_explain(cfg: DictConfig) -> dict[str, Any]:
    """Explain the configured texts; print the token tables; write the figures; return what was written."""
    validate_figures("explain", cfg)
    quiet_known_warnings()
    checkpoint = resolve_checkpoint(cfg.ckpt_path)
    texts = collect_texts(cfg)
    run_dir = run_dir_of(checkpoint)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else run_dir / "explain"
    check_writable(out_dir, "the figures (out_dir)")
    module = load_module(checkpoint, cfg.device)
    labels = label_names(module)
    vmask = module.model.vmask is not None

    profiles = profile_texts(module, texts, graph_layer=cfg.layer, centre_graph=cfg.centre)
    written: dict[str, list[Path]] = {}
    for k, profile in enumerate(profiles, start=1):
        print(format_profile(k, profile, labels), flush=True)
        figures = text_figures(profile, labels, top_pairs=cfg.top_pairs, max_tokens=cfg.max_tokens, vmask=vmask)
        for name, files in save_all(figures, out_dir, prefix=f"text{k}_", formats=cfg.formats, dpi=cfg.dpi).items():
            written[f"text{k}_{name}"] = files

    curves, source = deletion_curves_of(run_dir)
    if curves is not None:
        fig = curve_figure(curves, title=f"Deletion curve: {run_label(module) or run_dir.name}, test set")
        written.update(save_all({"deletion_curve": fig}, out_dir, formats=cfg.formats, dpi=cfg.dpi))
    else:
        print(f"note: no deletion curve drawn: {source} (python -m safr_lightning.evaluate writes one)")

    if cfg.split:
        if not vmask:
            print("note: no important-token figure: this checkpoint has no VMASK layer (Baseline)")
        else:
            stats, where = group_data(module, cfg.split, cfg.max_texts, cfg.layer)
            written.update(
                save_all(
                    {"important_vs_rest": group_figure(stats, where)},
                    out_dir,
                    formats=cfg.formats,
                    dpi=cfg.dpi,
                )
            )

    print(f"figures: {out_dir}/ ({', '.join(sorted(written))})")
    return {
        "checkpoint": checkpoint,
        "out_dir": out_dir,
        "files": written,
        "profiles": profiles,
        "deletion_source": source,
    }


def _quote_text_override(argv: list[str]) -> list[str]:
    """``text=a , b`` → ``text='a , b'``: Hydra would read an unquoted comma as a sweep."""
    out = []
    for arg in argv:
        if arg.startswith("text=") and not _is_quoted(arg[5:]):
            value = arg[5:].replace("\\", "\\\\").replace("'", "\\'")
            arg = f"text='{value}'"
        out.append(arg)
    return out


def _is_quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    try:
        return run_explain(cfg)
    except SAFRError as exc:
        raise UserErrorExit(exc) from exc  # run_cli prints it as one line, exit code 2


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="explain")
def _hydra_main(cfg: DictConfig) -> Any:
    return run_job(cfg)


def main() -> Any:
    sys.argv = [sys.argv[0], *_quote_text_override(sys.argv[1:])]
    return run_cli(_hydra_main)


if __name__ == "__main__":
    main()
