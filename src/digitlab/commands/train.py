"""`digitlab train`: one flag per TrainConfig setting, over a recipe's settings when one is named, or
`--resume RUN_DIR` to go on with a run's own config. With --negatives N, the pool of N non-digits (drawn as
photos, seeded by --seed: digitlab.inference.negatives) is made here and handed to fit."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from digitlab.commands.options import command_line
from digitlab.config import TrainConfig, field_types, flag

HELP = "train a model and write a run directory"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help=HELP)
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    parser.add_argument(
        "--config",
        metavar="RECIPE",
        help="start from a recipe: a name from 'digitlab recipes' or a TOML file of settings; flags override it",
    )
    add_setting_flags(parser)
    parser.set_defaults(run=run)


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, grouped and explained by the field's own metadata."""
    groups = {}
    types = field_types()
    for field in dataclasses.fields(TrainConfig):
        group_name = field.metadata["group"]
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(group_name)
        group, text = groups[group_name], field.metadata["help"]
        kind = types[field.name]
        if kind is bool:
            group.add_argument(flag(field.name), action="store_true", default=argparse.SUPPRESS, help=text)
            continue
        if field.default is not None:
            text = f"{text} (default: {field.default})"
        group.add_argument(
            flag(field.name), type=kind, default=argparse.SUPPRESS, metavar=field.name.split("_")[-1].upper(), help=text
        )


def run(args: argparse.Namespace) -> Path:
    """Train with the flags given, over a recipe's settings when one is named; with --resume, continue that
    run with its saved config (config.resumed_config says which flags may change)."""
    from digitlab import recipes
    from digitlab.config import resumed_config
    from digitlab.errors import ConfigError
    from digitlab.store import rundir
    from digitlab.training.fit import fit

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if args.resume is None:
        settings = recipes.load(args.config).settings if args.config else {}
        config = TrainConfig(**(settings | given)).validate()
        return fit(config, command=command_line(args), negatives=negatives_for(config))
    if args.config:
        raise ConfigError("--resume goes on with the run's own config.json; drop --config")
    saved = rundir.load_config(Path(args.resume))
    config = resumed_config(saved, given, args.resume)
    return fit(config, resuming=True, negatives=negatives_for(config))


def negatives_for(config: TrainConfig):
    """The non-digits a run with --negatives N trains on (the training split's pool, seeded by --seed: a resumed
    run gets the same), as a uint8 tensor; None without --negatives."""
    if not config.negatives:
        return None
    import torch

    from digitlab.inference.negatives import pool

    return torch.from_numpy(pool(config.negatives, "train", config.seed))
