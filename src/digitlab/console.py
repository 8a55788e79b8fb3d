"""What people read on a terminal: the per-epoch table, progress bars, evaluation summaries, digits as text."""

from __future__ import annotations

import contextlib
import sys

import torch

PROGRESS_MODES = ("auto", "bar", "lines", "none")  # auto: a bar on a terminal, nothing otherwise

COLUMNS = [  # (metric, heading, format)
    ("epoch", "epoch", "{:>5d}"),
    ("train/loss", "train loss", "{:>10.4f}"),
    ("train/seconds", "train s", "{:>8.2f}"),
    ("eval/seconds", "eval s", "{:>7.2f}"),
    ("val/acc", "val acc %", "{:>9.2%}"),
    ("test/loss", "test loss", "{:>9.4f}"),
    ("test/acc", "test acc %", "{:>10.2%}"),
]


class EpochTable:
    """An aligned table printed one row per epoch, as training goes."""

    def __init__(self, has_val: bool, print_line=print):
        self.columns = [c for c in COLUMNS if has_val or not c[0].startswith("val/")]
        self.print_line = print_line

    def header(self) -> None:
        self.print_line("  ".join(heading.rjust(width) for (_, heading, _), width in zip(self.columns, self.widths())))

    def row(self, values: dict) -> None:
        cells = []
        for (key, _heading, fmt), width in zip(self.columns, self.widths()):
            cell = fmt.format(values[key])
            if fmt.endswith("%}"):  # '97.12%' reads better as '97.12' under a heading that says %
                cell = cell.replace("%", "").rjust(len(cell))
            if len(cell) > width:  # a diverging loss (2e13) would push the columns apart: 3 significant digits
                cell = f"{values[key]:.3g}".rjust(width)
            cells.append(cell)
        self.print_line("  ".join(cells))

    def widths(self) -> list[int]:
        """Each column's width: its heading's or its format's, whichever is wider."""
        return [max(len(heading), len(fmt.format(0 if key == "epoch" else 0.0))) for key, heading, fmt in self.columns]


@contextlib.contextmanager
def progress_bar(total: int, done: int, description: str, mode: str = "auto"):
    """A tqdm bar on a terminal; nothing otherwise (the epoch table's lines are the progress)."""
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "none"
    if mode != "bar":
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, desc=description, unit="step", leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def format_evaluation(result: dict, matrix: torch.Tensor, class_names: list[str] | None = None) -> str:
    """Accuracy, loss, per-class accuracy and the confusion matrix (rows: true class) as text."""
    num_classes = len(matrix)
    per_class = matrix.diag().float() / matrix.sum(dim=1).clamp(min=1).float()
    width = max(5, len(str(int(matrix.max()))) + 1)
    lines = [
        f"test accuracy {result['accuracy']:.2%}  test loss {result['loss']:.4f}  ({int(matrix.sum())} images)",
        "",
        "per-class accuracy:",
        "  " + "  ".join(f"{class_name(c, class_names)}: {a:.2%}" for c, a in enumerate(per_class.tolist())),
        "",
        "confusion matrix (rows: true class, columns: predicted):",
        " " * 6 + "".join(f"{c:>{width}d}" for c in range(num_classes)),
    ]
    for true_class in range(num_classes):
        lines.append(f"{true_class:>5d} " + "".join(f"{int(v):>{width}d}" for v in matrix[true_class]))
    if class_names and list(class_names) != [str(c) for c in range(len(class_names))]:
        lines += ["", "classes: " + ", ".join(f"{c} {name}" for c, name in enumerate(class_names))]
    return "\n".join(lines)


def class_name(label: int, class_names: list[str] | None) -> str:
    """A label as people name it: the dataset's class name where it has them, else the number."""
    return class_names[label] if class_names and label < len(class_names) else str(label)


def format_models(rows: list[tuple[str, str, int]]) -> str:
    width = max(len(name) for name, _, _ in rows)
    return "\n".join(f"{name:<{width}}  {count:>10,d} parameters  {summary}" for name, summary, count in rows)


def ascii_digit(image: torch.Tensor) -> list[str]:
    """A uint8 (H, W) image as text, one character per pixel, darker characters for brighter ink."""
    shades = " .:-=+*#%@"
    return ["".join(shades[min(int(v) * len(shades) // 256, len(shades) - 1)] for v in row) for row in image]
