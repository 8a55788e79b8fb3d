"""Recipes: named TrainConfig settings in plain TOML, shipped beside this file.

A recipe file has a [recipe] table (summary: what it is for; result: its measured result, with the command
and machine, once measured) and a [config] table of TrainConfig fields. `digitlab train --config NAME` runs a
shipped recipe, `--config FILE` a file of the user's own (the same layout; [recipe] optional), and any flag
overrides either. Adding a recipe is adding a file here.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from digitlab.config import TrainConfig, field_types, flag
from digitlab.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FOLDER = Path(__file__).parent


@dataclass
class Recipe:
    name: str
    summary: str  # what it is for
    result: str | None  # its measured result, or None until it has been measured
    settings: dict  # TrainConfig fields
    path: Path


def names() -> list[str]:
    return sorted(path.stem for path in FOLDER.glob("*.toml"))


def load(name_or_path: str) -> Recipe:
    """A shipped recipe by name, or a TOML file by path; ConfigError naming the file and what is wrong."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = FOLDER / f"{name_or_path}.toml"
        if not path.is_file():
            raise ConfigError(
                f"no recipe named {name_or_path!r}; choose one of: {', '.join(names())} (or give a .toml file's path)"
            )
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read the recipe {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    unknown_tables = sorted(set(document) - {"recipe", "config"})
    if unknown_tables or "config" not in document:
        raise ConfigError(
            f"{path}: a recipe has a [config] table of training settings (and an optional [recipe] table); "
            + (f"found {unknown_tables}" if unknown_tables else "[config] is missing")
        )
    about = document.get("recipe", {})
    settings = document["config"]
    check_settings(settings, path)
    return Recipe(path.stem, about.get("summary", ""), about.get("result"), settings, path)


def check_settings(settings: dict, path: Path) -> None:
    """Every key a TrainConfig field, every value of the field's type: one clear message otherwise."""
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    types = field_types()
    for name, value in settings.items():
        if name not in fields:
            raise ConfigError(
                f"{path}: unknown setting {name!r} in [config]; settings are the long names of "
                f"'digitlab train --help' with underscores (e.g. batch_size for --batch-size)"
            )
        allowed = (types[name],)
        if float in allowed:
            allowed += (int,)  # lr = 1 means 1.0
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            wanted = " or ".join(t.__name__ for t in allowed)
            raise ConfigError(f"{path}: {name} = {value!r} should be {wanted} (the flag {flag(name)})")
