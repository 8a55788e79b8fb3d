"""The package's imports point one way: errors -> console, models, optim, schedules, data, shard, seeds -> perf ->
config -> store, recipes -> training -> inference -> paper, serve -> tune -> commands -> cli. A module may import from
a lower layer or from its own unit (its subpackage, or itself); anything else is an upward or sideways import and fails
here.
Imports inside functions count too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "digitlab"
LAYERS = [
    {"__init__", "errors"},
    {"console", "models", "optim", "schedules", "data", "shard", "seeds"},
    {"perf"},
    {"config"},
    {"store", "recipes"},
    {"training"},
    {"inference"},
    {"paper", "serve"},
    {"tune"},
    {"commands"},
    {"cli"},
    {"__main__"},
]
LAYER_OF = {unit: number for number, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)


def unit_of(module: str) -> str:
    """digitlab.training.loop -> training; digitlab.config -> config."""
    return module.split(".")[1] if "." in module else "__init__"


def imports_of(path: Path) -> set[str]:
    """The digitlab modules a file imports (from X import Y: X.Y when that is a module, else X)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("digitlab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("digitlab"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(path) for path in FILES}
GRAPH = {module_name(path): imports_of(path) - {module_name(path)} for path in FILES}


def test_every_unit_has_a_layer():
    assert {unit_of(module) for module in MODULES} <= set(LAYER_OF)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module):
    upward = [
        target
        for target in GRAPH[module]
        if unit_of(target) != unit_of(module) and LAYER_OF[unit_of(target)] >= LAYER_OF[unit_of(module)]
    ]
    assert not upward, f"{module} imports {upward}, which are not below it"


def test_no_import_cycle():
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(path + [module])
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            visit(target, path + [module])
        state[module] = "done"

    for module in sorted(GRAPH):
        visit(module, [])


def test_the_check_sees_an_upward_import(tmp_path):
    """The check above is only worth having if it can fail: a store module importing training is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from digitlab.training.fit import fit\n")
    targets = imports_of(bad)
    assert targets == {"digitlab.training.fit"}
    assert LAYER_OF[unit_of("digitlab.training.fit")] > LAYER_OF["store"]
