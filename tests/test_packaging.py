"""A non-editable install from the built wheel runs the CLIs: the configs travel inside the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from safr_lightning.paths import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """The wheel built from this checkout, installed (no dependencies: this environment's) into a folder."""
    root = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(REPO)],
                   check=True, capture_output=True, cwd=root)  # fmt: skip
    wheels = list((root / "dist").glob("safr_lightning-*.whl"))
    assert len(wheels) == 1
    site = root / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheels[0])], check=True, capture_output=True
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The installed copy comes first on the path, ahead of this checkout's editable install.
    env.update(PYTHONPATH=str(site), WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    work = root / "work"
    work.mkdir()
    return work, env, site


def run(args: list[str], work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_holds_the_configs_and_is_the_package_imported(installed: tuple[Path, dict[str, str], Path]) -> None:
    work, env, site = installed
    shipped = {
        p.relative_to(site / "safr_lightning" / "conf") for p in (site / "safr_lightning" / "conf").rglob("*.yaml")
    }
    ours = {p.relative_to(Path(CONFIG_DIR)) for p in Path(CONFIG_DIR).rglob("*.yaml")}
    assert ours and shipped == ours  # every config group, the nested hydra/launcher/ too
    out = run([sys.executable, "-c", "import safr_lightning.paths as p; print(p.CONFIG_DIR)"], work, env)
    assert Path(out.stdout.strip()).is_relative_to(site), out.stdout


def test_installed_console_scripts_print_the_config_train_and_aggregate(
    installed: tuple[Path, dict[str, str], Path],
) -> None:
    work, env, site = installed
    bin_dir = site / "bin"
    cfg = run([str(bin_dir / "safr-train"), "--cfg", "job", "dataset=imdb"], work, env)
    assert cfg.returncode == 0, cfg.stderr
    assert "name: imdb" in cfg.stdout and "lambda:" in cfg.stdout

    trained = run([str(bin_dir / "safr-train"), "dataset=synthetic", "debug=tiny", "logger=csv"], work, env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    results = list((work / "outputs").rglob("results.json"))
    assert len(results) == 1 and json.loads(results[0].read_text())["status"] == "ok"

    aggregated = run([str(bin_dir / "safr-aggregate"), str(work / "outputs")], work, env)
    assert aggregated.returncode == 0, aggregated.stderr
    assert list((work / "outputs").glob("ablation_synthetic.md"))


def test_the_installed_wheel_finds_the_pareto_sweeper(installed: tuple[Path, dict[str, str], Path]) -> None:
    work, env, site = installed
    assert (site / "hydra_plugins" / "safr_pareto_sweeper" / "safr_pareto_sweeper.py").is_file()
    cfg = run([str(site / "bin" / "safr-train"), "hparams_search=pareto", "--cfg", "hydra"], work, env)
    assert cfg.returncode == 0, cfg.stderr
    assert "_target_: hydra_plugins.safr_pareto_sweeper.safr_pareto_sweeper.ParetoSweeper" in cfg.stdout
