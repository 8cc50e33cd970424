"""The package's import layering (README, Development): a module imports only from its own layer or lower ones."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import safr_lightning

PACKAGE = Path(safr_lightning.__file__).parent

# Lowest first. A module belongs to the first layer with a matching entry (a module name, or a
# package prefix ending in ".").
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "",
            "errors",
            "files",
            "runlog",
            "paths",
            "fidelity",
            "results",
            "rundir",
            "checkpoints",
            "resume",
            "cli",
            "config",
            "config.",
            "search.config",
            "model.config",
            "data.special_tokens",
            "data.synthetic",
        ),
    ),
    ("tensor maths", ("model", "model.", "losses", "metrics", "metrics.")),
    ("data", ("data", "data.")),
    ("module", ("module",)),
    ("analysis", ("analysis", "analysis.", "plots", "plots.")),
    ("training", ("callbacks", "callbacks.", "checkpoint_io", "loggers", "memory", "precision", "experiment")),
    ("sweeps", ("sweep", "sweep.", "search", "search.", "gpu_slots")),
    ("entry points", ("train", "evaluate", "explain", "aggregate", "dashboard", "neurons", "neurons.", "toy", "toy.")),
]
FOUNDATION = LAYERS[0][1]


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member or (member.endswith(".") and module.startswith(member)):
                return index
    raise AssertionError(f"safr_lightning.{module} is in no layer: add it to LAYERS and to the README table")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix("__init__").rstrip(".")
        found[name] = path
    return found


def imports_of(path: Path) -> set[str]:
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("safr_lightning"):
            targets.add(node.module.removeprefix("safr_lightning").lstrip("."))
        elif isinstance(node, ast.Import):
            targets.update(a.name.removeprefix("safr_lightning").lstrip(".") for a in node.names
                           if a.name.startswith("safr_lightning."))  # fmt: skip
    return targets


def test_every_import_goes_to_the_same_layer_or_a_lower_one() -> None:
    upward = []
    for name, path in sorted(modules().items()):
        for target in sorted(imports_of(path) - {name}):
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert upward == []


def test_the_foundation_layer_imports_neither_torch_nor_lightning() -> None:
    names = [n for n in modules() if layer_of(n) == 0 and n]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module('safr_lightning.' + name)\n"
        "print(sorted(m for m in ('torch', 'lightning', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_table_names_every_top_level_module() -> None:
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    table = readme[readme.index("| layer | modules |") :].split("\n\n")[0]
    top = {n.split(".")[0] for n in modules() if n}
    missing = sorted(t for t in top if f"`{t}.py`" not in table and f"`{t}/`" not in table)
    assert missing == []
