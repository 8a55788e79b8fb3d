#!/usr/bin/env python
"""The pictures the README's reading examples use: docs/examples/2026.jpg (MNIST test digits 2, 0, 2, 6 composed
with narrow gaps and photographed, as benchmarks/read_numbers.py composes numbers), docs/examples/seven.jpg (one
MNIST test 7, photographed) and docs/examples/star.jpg (a star drawn with the pen of data/pen.py, photographed).

    .venv/bin/python benchmarks/readme_examples.py [--out docs/examples] [--data-dir DIR]

Seeded: the same files every time. Then `digitlab read docs/examples/2026.jpg` and `digitlab predict
docs/examples/seven.jpg docs/examples/star.jpg` print what the README shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import common
from digitlab.data import pen
from digitlab.data.photo import as_photo
from read_numbers import compose, shaped

SEED = 2026


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--out", default=str(common.REPO / "docs" / "examples"), help="the folder to write")
    common.add_data_dir(parser)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = common.load_data(args.data_dir)
    images, labels = data.test_images.numpy(), data.test_labels.numpy()
    rng = np.random.default_rng(SEED)
    first = {digit: int(np.flatnonzero(labels == digit)[0]) for digit in (0, 2, 6, 7)}
    number = compose([images[first[d]] for d in (2, 0, 2, 6)], "narrow", rng)
    as_photo(number, rng).save(out / "2026.jpg", quality=90)
    as_photo(np.pad(shaped(images[first[7]], 80, 0.0), 40), rng).save(out / "seven.jpg", quality=90)
    strokes, filled = pen.SHAPES["star"](rng)
    as_photo(pen.draw(strokes, rng, filled), rng).save(out / "star.jpg", quality=90)
    for name in ("2026.jpg", "seven.jpg", "star.jpg"):
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
