"""``python -m safr_lightning.toy [toy.KEY=VALUE ...]``: the toy-model sweep (conf/toy.yaml).

Trains the sweep, writes ``toy.json`` and the figures into the Hydra run dir
(``outputs/toy/<date>/<time>``), prints one summary line and the path. A bad value is one line on
stderr with exit code 2.
"""

from __future__ import annotations

from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from safr_lightning.cli import UserErrorExit, run_cli
from safr_lightning.errors import SAFRError
from safr_lightning.paths import CONFIG_DIR
from safr_lightning.toy.config import register_toy_config

register_toy_config()


def run_job(cfg: DictConfig) -> dict[str, Any]:
    from safr_lightning.toy.config import validate
    from safr_lightning.toy.experiment import run_toy  # torch loads only once the config is valid

    try:
        validate(cfg)
        report = run_toy(cfg, HydraConfig.get().runtime.output_dir)
    except SAFRError as exc:
        raise UserErrorExit(exc) from exc  # run_cli prints it as one line, exit code 2
    print(report["summary"])
    print(f"written: {report['path']}")
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="toy")
def _hydra_main(cfg: DictConfig) -> Any:
    return run_job(cfg)


def main() -> Any:
    return run_cli(_hydra_main)


if __name__ == "__main__":
    main()
