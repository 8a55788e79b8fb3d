"""Datasets digitlab recognises by checksum: MNIST, and the drop-ins that share its files and shapes.

A file matches a dataset when the sha256 of its uncompressed bytes is the dataset's (the same whatever
compressed it; published for MNIST), or when it is the dataset's original .gz file, whose md5 the
dataset's authors publish (Fashion-MNIST and KMNIST publish only these: a copy that was decompressed or
recompressed is then not recognised, and trains as a custom dataset). A folder whose four files all
match one dataset is that dataset, and its class names go with every run trained on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from digitlab.data.idx import MNIST_SHA256


@dataclass(frozen=True)
class KnownDataset:
    name: str  # what --dataset calls it
    title: str  # what people call it
    classes: tuple[str, ...]  # class names, by label
    sha256: dict[str, str]  # uncompressed file name -> sha256 of its bytes (where published)
    gzip_md5: dict[str, str]  # uncompressed file name -> md5 of the published .gz file


DIGITS = tuple(str(digit) for digit in range(10))

KNOWN = {
    "mnist": KnownDataset(
        "mnist",
        "MNIST",
        DIGITS,
        MNIST_SHA256,
        {
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": KnownDataset(
        "fashion-mnist",
        "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        {},
        {
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "kmnist": KnownDataset(
        "kmnist",
        "KMNIST",
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        {},
        {
            "train-images-idx3-ubyte": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    ),
}
CUSTOM = "custom"  # --dataset custom: the files as they are, checked for format only
DATASET_CHOICES = ("auto", *KNOWN, CUSTOM)


def matching_files(known: KnownDataset, sha256: dict[str, str], gzip_md5: dict[str, str]) -> list[str]:
    """The files (uncompressed names) that are `known`'s; gzip_md5 holds only the files that were .gz."""
    return [
        name
        for name in sha256
        if known.sha256.get(name) == sha256[name] or (name in gzip_md5 and known.gzip_md5.get(name) == gzip_md5[name])
    ]


def identify(sha256: dict[str, str], gzip_md5: dict[str, str]) -> tuple[KnownDataset | None, KnownDataset | None]:
    """(the dataset all four files are, or None; a dataset only some of them are, or None: a damaged copy)."""
    partial = None
    for known in KNOWN.values():
        matches = matching_files(known, sha256, gzip_md5)
        if len(matches) == len(sha256):
            return known, None
        if matches and partial is None:
            partial = known
    return None, partial
