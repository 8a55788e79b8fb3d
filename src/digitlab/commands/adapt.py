"""`digitlab adapt [MODEL] SAMPLES --out RUN`: fine-tune a finished run (or the shipped model) on a person's samples
folder, mixed with MNIST replay, into a new run directory (digitlab.inference.adapt)."""

from __future__ import annotations

import argparse
import json

from digitlab.commands.options import DATA_DIR
from digitlab.errors import ConfigError

HELP = "fine-tune a model on a person's samples folder (digitlab samples add, serve --samples) into a new run"


def register(commands: argparse._SubParsersAction) -> None:
    from digitlab.inference.adapt import EPOCHS

    parser = commands.add_parser(
        "adapt",
        usage="%(prog)s [-h] [MODEL] SAMPLES --out RUN [options]",
        help=HELP,
        description=HELP + ". The samples, repeated and augmented, are mixed with MNIST training digits so that the "
        "model forgets nothing; part of them is held out to measure the person's accuracy before and after.",
        parents=[DATA_DIR],
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="[MODEL] SAMPLES",
        help="MODEL: a finished run directory (default: the model shipped with digitlab); SAMPLES: a samples folder",
    )  # fmt: skip
    parser.add_argument("--out", required=True, metavar="RUN", help="the new run directory (must not exist)")
    parser.add_argument(
        "--holdout", type=float, default=0.2, help="share of each label's samples held out to measure (default 0.2)"
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"passes over the mix (default {EPOCHS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split and the MNIST replay")
    parser.add_argument("--json", action="store_true", help="print what adapt.json records as one JSON document")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys

    from digitlab.inference.adapt import adapt
    from digitlab.store.samples import open_samples

    if len(args.inputs) > 2:
        raise ConfigError("pass at most a model and a samples folder: digitlab adapt [MODEL] SAMPLES --out RUN")
    model, folder = (args.inputs[0], args.inputs[1]) if len(args.inputs) == 2 else (None, args.inputs[0])
    if args.epochs < 1:
        raise ConfigError(f"--epochs must be 1 or more, got {args.epochs}")
    samples = open_samples(folder)
    images, labels, ids = samples.load()
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        record = adapt(
            model, images, labels, args.out, sample_ids=ids, samples_folder=str(samples.path), holdout=args.holdout,
            seed=args.seed, data_dir=args.data_dir, epochs=args.epochs,
        )  # fmt: skip
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    before, after = record["before"], record["after"]
    print(f"adapted in {record['seconds']:.1f} s on {len(record['adapted_on'])} samples: {record['run_dir']}")
    if before["held_out"]:
        print(
            f"held-out samples ({before['held_out']}): {before['held_out_acc']:.1%} before, "
            f"{after['held_out_acc']:.1%} after"
        )
    else:
        print("no samples held out (--holdout 0): the person's accuracy is not measured")
    if before["mnist_test_acc"] is not None and after["mnist_test_acc"] is not None:
        print(f"MNIST test: {before['mnist_test_acc']:.2%} before, {after['mnist_test_acc']:.2%} after")
    print(
        f"use it: digitlab predict {record['run_dir']} IMAGE  |  digitlab serve {record['run_dir']} --samples {folder}"
    )
    return 0
