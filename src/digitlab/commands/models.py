"""`digitlab models`: list the models with their parameter counts at default sizes."""

from __future__ import annotations

import argparse

HELP = "list the models with their parameter counts"


def register(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("models", help=HELP).set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from digitlab import console
    from digitlab.models import MODELS, build, count_parameters

    rows = [
        (name, (cls.__doc__ or "").strip().splitlines()[0], count_parameters(build(name, (28, 28), 10)))
        for name, cls in MODELS.items()
    ]
    print("for 28x28 images and 10 classes, default sizes:")
    print(console.format_models(rows))
