"""`digitlab data`: obtain and verify the dataset, print its statistics."""

from __future__ import annotations

import argparse

from digitlab.commands.options import DATA_DIR, setting_help
from digitlab.data.known import DATASET_CHOICES

HELP = "obtain and verify the dataset, print its statistics"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("data", help=HELP, parents=[DATA_DIR])
    parser.add_argument("--dataset", default="auto", choices=DATASET_CHOICES, help=setting_help("dataset"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    import torch

    from digitlab.data.dataset import load
    from digitlab.data.known import KNOWN

    dataset = load(args.data_dir, expect=args.dataset)
    print(f"source: {dataset.source}")
    if dataset.verified:
        print(f"dataset: {KNOWN[dataset.name].title}, verified: yes, its published checksums match")
    else:
        print("dataset: custom, verified: no (not a dataset digitlab knows)")
    for name, digest in dataset.checksums.items():
        print(f"  sha256 {digest}  {name}")
    print(f"image size: {dataset.image_shape[0]}x{dataset.image_shape[1]}, classes: {dataset.num_classes}")
    for split, images, labels in (
        ("train", dataset.train_images, dataset.train_labels),
        ("test", dataset.test_images, dataset.test_labels),
    ):
        counts = torch.bincount(labels, minlength=dataset.num_classes).tolist()
        pixels = images.double() / 255
        print(f"{split}: {len(labels)} examples; pixel mean {pixels.mean():.4f}, std {pixels.std():.4f}")
        print("  per class: " + " ".join(f"{c}:{n}" for c, n in enumerate(counts)))
