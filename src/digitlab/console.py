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
    ("ema/val/acc", "ema val %", "{:>9.2%}"),
    ("test/loss", "test loss", "{:>9.4f}"),
    ("test/acc", "test acc %", "{:>10.2%}"),
    ("ema/test/acc", "ema test %", "{:>10.2%}"),
]


class EpochTable:
    """An aligned table printed one row per epoch, as training goes."""

    def __init__(self, has_val: bool, print_line=print, has_average: bool = False, has_test: bool = True):
        shown = {"val": has_val, "ema": has_average, "test": has_test}
        self.columns = [c for c in COLUMNS if all(shown.get(part, True) for part in c[0].split("/")[:-1])]
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


def format_evaluation(record: dict) -> str:
    """An evaluation (inference.assessment.assess's dict) as text: accuracy with its confidence interval, loss,
    per-class recall and precision, the files written, and the confusion matrix (rows: true class)."""
    class_names = record.get("class_names")
    matrix = record["confusion"]
    num_classes = len(matrix)
    interval = record["interval"]
    method = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson"}.get(interval["method"], interval["method"])
    width = max(5, len(str(max(max(row) for row in matrix))) + 1)
    lines = [
        f"test accuracy {record['accuracy']:.2%} ({interval['confidence']:.0%} CI {interval['low'] * 100:.2f}-"
        f"{interval['high'] * 100:.2f}%, {method})  test loss {record['loss']:.4f}  ({record['images']} images)",
        f"{record['errors']} of {record['images']} test images misclassified",
        "",
        *format_per_class(record["per_class"], class_names),
        "",
        *format_files(record),
        *format_calibration(record),
        "",
        "confusion matrix (rows: true class, columns: predicted):",
        " " * 6 + "".join(f"{c:>{width}d}" for c in range(num_classes)),
    ]
    for true_class in range(num_classes):
        lines.append(f"{true_class:>5d} " + "".join(f"{int(v):>{width}d}" for v in matrix[true_class]))
    if class_names and list(class_names) != [str(c) for c in range(len(class_names))]:
        lines += ["", "classes: " + ", ".join(f"{c} {name}" for c, name in enumerate(class_names))]
    return "\n".join(lines)


def format_calibration(record: dict) -> list[str]:
    """How honest the confidence is on the test set: its expected calibration error with the run's temperature
    and without it, the share of test digits below the "not a digit" threshold, and the reliability diagram."""
    calibration = record.get("calibration")
    if not calibration:
        return []
    ece, plain, bins = calibration["ece"], calibration["ece_uncalibrated"], calibration["bins"]
    if calibration["calibrated"]:
        lines = [
            f"calibration on the test set: expected calibration error {ece:.2%} at the run's temperature "
            f"{calibration['temperature']:.4g} (fitted on {calibration['fitted_on']})",
            f"  {plain:.2%} uncalibrated (T = 1); {bins} equal-width confidence bins",
        ]
    else:
        lines = [
            f"calibration on the test set: expected calibration error {plain:.2%}, uncalibrated (T = 1; {bins} bins)",
            f"  the run has no calibration for these weights: fit one with 'digitlab calibrate {record['run_dir']}'",
        ]
    if calibration["reject_below"] is not None:
        lines.append(
            f"  'not a digit' below a confidence of {calibration['reject_below']:.4f}: "
            f"{calibration['rejected']:.2%} of the test digits"
        )
    reliability = record["files"].get("reliability")
    return ["", *lines, *([f"  reliability diagram: {reliability}"] if reliability else [])]


def format_per_class(rows: list[dict], class_names: list[str] | None = None) -> list[str]:
    """Recall (the per-class accuracy), precision and counts, one line per class; '-' where a ratio is undefined."""
    labels = [class_name(row["class"], class_names) + ":" for row in rows]
    width = max(len("class"), *(len(label) for label in labels))

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.2%}"

    lines = [
        "per-class accuracy (recall) and precision:",
        f"  {'class':<{width}}  {'recall':>7}  {'precision':>9}  {'images':>6}  {'predicted':>9}",
    ]
    for label, row in zip(labels, rows):
        lines.append(
            f"  {label:<{width}}  {percent(row['recall']):>7}  {percent(row['precision']):>9}  "
            f"{row['support']:>6d}  {row['predicted']:>9d}"
        )
    if any(row["precision"] is None or row["recall"] is None for row in rows):
        lines.append("  -: undefined, the class was never predicted (precision) or has no test images (recall)")
    return lines


def format_files(record: dict) -> list[str]:
    """The files an evaluation wrote, each with what it holds."""
    files = record["files"]
    entries = [
        (files["record"], "every number here, for machines"),
        (files["confusion"], "the confusion matrix as a figure"),
    ]
    if files.get("misclassified"):
        shown = record["misclassified_shown"]
        which = f"the first {shown} of {record['errors']}" if shown < record["errors"] else f"all {shown}"
        entries.append((files["misclassified"], f"{which} misclassified test digits, true and predicted class"))
    width = max(len(path) for path, _ in entries)
    lines = ["written:"] + [f"  {path:<{width}}  {about}" for path, about in entries]
    if not files.get("misclassified"):
        lines.append("  no misclassified test digits: no grid of them was written")
    return lines


def class_name(label: int, class_names: list[str] | None) -> str:
    """A label as people name it: the dataset's class name where it has them, else the number."""
    return class_names[label] if class_names and label < len(class_names) else str(label)


def format_recipes(rows: list[tuple[str, str, int, str, str]]) -> str:
    """(name, model, parameters, what it is for, measured result) as one block per recipe."""
    width = max(len(name) for name, *_ in rows)
    lines = []
    for name, model, size, summary, result in rows:
        lines += [f"{name:<{width}}  {model}, {size:,d} parameters: {summary}", f"{'':<{width}}  result: {result}"]
    return "\n".join(lines)


def format_models(rows: list[tuple[str, str, int]]) -> str:
    width = max(len(name) for name, _, _ in rows)
    return "\n".join(f"{name:<{width}}  {count:>10,d} parameters  {summary}" for name, summary, count in rows)


COMPARED = [  # (final value, heading, format): digitlab compare's columns after the config fields that differ
    ("epochs", "epochs run", "{:d}"),
    ("train/loss", "train loss", "{:.4f}"),
    ("val/acc", "val acc %", "{:.2%}"),
    ("ema/val/acc", "ema val %", "{:.2%}"),
    ("test/acc", "test acc %", "{:.2%}"),
    ("ema/test/acc", "ema test %", "{:.2%}"),
    ("train_seconds", "train s", "{:.1f}"),
    ("cpu_pressure", "cpu busy %", "{:.0f}"),  # the highest cpu_pressure_avg10: high, the seconds are suspect
]


def format_comparison(rows: list[dict], fields: list[str]) -> str:
    """Runs side by side, one line each: its label ("run"), the config `fields` that differ between them (from
    its "config"), its final numbers ("final": a column only where some run has one; '-' where one lacks it)
    and its "state" (finished, unfinished, ...)."""
    shown = [column for column in COMPARED if any(column[0] in row["final"] for row in rows)]
    headings = ["run", *fields, *(heading for _, heading, _ in shown), "state"]
    table = []
    for row in rows:
        values = [fmt.format(row["final"][key]) if key in row["final"] else "-" for key, _, fmt in shown]
        values = [value.replace("%", "") for value in values]  # the heading says %
        config = ["-" if row["config"].get(name) is None else str(row["config"][name]) for name in fields]
        table.append([row["run"], *config, *values, row["state"]])
    widths = [max(len(line[i]) for line in [headings, *table]) for i in range(len(headings))]
    numeric = len(headings) - len(shown) - 1  # the final numbers align right, the rest left

    def line(cells: list[str]) -> str:
        aligned = [
            cell.rjust(width) if numeric <= i < len(cells) - 1 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "  ".join(aligned).rstrip()

    return "\n".join([line(headings), *(line(cells) for cells in table)])


def ascii_digit(image: torch.Tensor) -> list[str]:
    """A uint8 (H, W) image as text, one character per pixel, darker characters for brighter ink."""
    shades = " .:-=+*#%@"
    return ["".join(shades[min(int(v) * len(shades) // 256, len(shades) - 1)] for v in row) for row in image]


def format_predictions(results: list[dict]) -> str:
    """predict_files' answers as an aligned table: file, digit, probability, the three most probable; an answer
    that is "not a digit" says so plainly, with its reason and the model's best guess."""
    rows = [("file", "digit", "probability", "top 3")] + [
        (
            result["file"],
            "-" if result.get("not_a_digit") else result["label"],
            _verdict(result) if result.get("not_a_digit") else f"{result['probability']:.1%}",
            ", ".join(f"{guess['label']} {guess['probability']:.1%}" for guess in result["top3"]),
        )
        for result in results
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip() for row in rows
    )


def _verdict(answer: dict) -> str:
    return f"not a digit ({answer['reason']}; best guess {answer['label']} at {answer['probability']:.0%})"


def format_readings(results: list[dict]) -> str:
    """read_files' answers: per file its number, then each digit with its confidence and box (or "not a digit",
    its reason and the best guess)."""
    lines = []
    for result in results:
        lines.append(
            f"{result['file']}: {result['number']}"
            + (f"  (not a digit: {result['reason']})" if result["not_a_digit"] else "")
        )
        for position, digit in enumerate(result["digits"], 1):
            said = _verdict(digit) if digit["not_a_digit"] else f"{digit['label']} {digit['probability']:.1%}"
            lines.append(f"  {position:>2}. {said}  box {digit['box']}")
    return "\n".join(lines)
