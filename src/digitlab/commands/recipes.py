"""`digitlab recipes`: list the shipped training recipes with their measured results."""

from __future__ import annotations

import argparse

HELP = "list the shipped training recipes with their measured results"


def register(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("recipes", help=HELP).set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from digitlab import console, recipes
    from digitlab.config import TrainConfig
    from digitlab.models import build_from_config, count_parameters

    rows = []
    for name in recipes.names():
        recipe = recipes.load(name)
        config = TrainConfig(**recipe.settings)
        size = count_parameters(build_from_config(config, (28, 28), 10))
        rows.append((name, config.model, size, recipe.summary, recipe.result or "not measured yet"))
    print(console.format_recipes(rows))
