"""The reproduction's figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

COLORS = {
    "lstm": "tab:blue",
    "blstm-paper": "tab:orange",
    "blstm-final": "tab:green",
    "sgd": "tab:red",
    "momentum": "tab:purple",
    "rmsprop": "tab:orange",
    "adam": "tab:blue",
}


def _band(axis, x, runs_by_seed: list[list[float]], color: str, label: str, scale: float = 1.0) -> None:
    """Mean line, and a min-max band over seeds when there are several."""
    values = np.array(runs_by_seed, dtype=float) * scale  # (seeds, points)
    axis.plot(x, values.mean(axis=0), color=color, label=label, linewidth=1.8)
    if len(values) > 1:
        axis.fill_between(x, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2, linewidth=0)


def table_figure(path: Path, title: str, ours: dict[str, dict], paper: dict) -> None:
    """ours: row label -> {"acc": [[per epoch] per seed], "seconds": [[...]]}; paper: model -> {"acc", "seconds"}."""
    figure, (acc_axis, time_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, series in ours.items():
        epochs = np.arange(1, len(series["acc"][0]) + 1)
        color = COLORS.get(label, "black")
        _band(acc_axis, epochs, series["acc"], color, f"{label} (ours)", scale=100)
        _band(time_axis, epochs, series["seconds"], color, f"{label} (ours)")
    for model, values in paper.items():
        epochs = np.arange(1, len(values["acc"]) + 1)
        color = COLORS["blstm-paper" if model == "blstm" else model]
        acc_axis.plot(epochs, values["acc"], "o", color=color, markerfacecolor="none", label=f"{model} (paper)")
        time_axis.plot(epochs, values["seconds"], "o", color=color, markerfacecolor="none", label=f"{model} (paper)")
    acc_axis.set(title="Test accuracy", xlabel="epoch", ylabel="test accuracy (%)")
    time_axis.set(title="Training time per epoch", xlabel="epoch", ylabel="seconds per epoch (log scale)", yscale="log")
    for axis in (acc_axis, time_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(figure, (acc_axis, time_axis), title, path)


def _finish(figure, axes, title: str, path: Path) -> None:
    """Grid and legend on every panel, the title, and the PNG."""
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """A trailing moving average (the first points average what exists so far)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


def optimizer_figure(path: Path, title: str, panels: list[tuple[str, dict[str, dict]]]) -> None:
    """panels: (panel title, optimizer label -> {"loss": [[per step] per seed], "acc": [[per epoch] per seed]})."""
    figure, axes = plt.subplots(2, len(panels), figsize=(6.5 * len(panels), 8), squeeze=False, sharey="row")
    for column, (panel_title, series) in enumerate(panels):
        loss_axis, acc_axis = axes[0][column], axes[1][column]
        for label, values in series.items():
            color = COLORS.get(label.split(" ")[0], "black")
            losses = np.array(values["loss"], dtype=float)  # (seeds, steps)
            steps = np.arange(1, losses.shape[1] + 1)
            loss_axis.plot(steps, losses.mean(axis=0), color=color, alpha=0.25, linewidth=0.7)
            window = max(1, losses.shape[1] // 30)
            _band(loss_axis, steps, [smooth(row, window) for row in losses], color, label)
            epochs = np.arange(1, len(values["acc"][0]) + 1)
            _band(acc_axis, epochs, values["acc"], color, label, scale=100)
            acc_axis.plot(epochs, np.array(values["acc"]).mean(axis=0) * 100, "o", color=color)
        loss_axis.set(
            title=f"{panel_title}: training loss",
            xlabel="optimizer step",
            ylabel="cross-entropy loss (raw faint, smoothed bold)",
        )
        acc_axis.set(title=f"{panel_title}: test accuracy", xlabel="epoch", ylabel="test accuracy (%)")
        acc_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(figure, axes.flatten(), title, path)


def compare_figure(path: Path, title: str, runs: list[tuple[str, dict]]) -> None:
    """`digitlab compare`'s figure: runs on shared axes against epochs. runs: (label, store.compared_runs.curves(run)).
    Left: the training loss of every step (faint) and its moving average over a tenth of an epoch (bold), with
    the test (or validation) loss at each epoch's end; right: test (solid) and validation (dashed) accuracy."""
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(13, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for number, (label, series) in enumerate(runs):
        color = colors[number % len(colors)]
        if series["step_loss"]:
            losses = np.array(series["step_loss"], dtype=float)
            window = max(1, series["steps_per_epoch"] // 10)
            loss_axis.plot(series["step_epochs"], losses, color=color, alpha=0.2, linewidth=0.7)
            loss_axis.plot(series["step_epochs"], smooth(losses, window), color=color, linewidth=1.8, label=label)
        for key, style, what in (("test/loss", "--", "test"), ("val/loss", ":", "val")):
            points = [(x, y) for x, y in zip(series["epochs"], series[key]) if y is not None]
            if points:
                loss_axis.plot(*zip(*points), style, marker="o", color=color, linewidth=1, label=f"{label} ({what})")
        for key, style, what in (("test/acc", "-", "test"), ("val/acc", "--", "val")):
            points = [(x, y * 100) for x, y in zip(series["epochs"], series[key]) if y is not None]
            if points:
                acc_axis.plot(*zip(*points), style, marker="o", color=color, label=f"{label} ({what})")
    loss_axis.set(
        title="Loss: training per step (faint; bold: moving average), test/val per epoch",
        xlabel="epoch",
        ylabel="cross-entropy loss (log scale)",
        yscale="log",
    )
    acc_axis.set(title="Accuracy per epoch", xlabel="epoch", ylabel="accuracy (%)")
    acc_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis, what in ((loss_axis, "loss"), (acc_axis, "accuracy")):
        if not axis.has_data():  # runs stopped before their first epoch ended
            axis.text(0.5, 0.5, f"no {what} recorded yet", ha="center", va="center", transform=axis.transAxes)
            axis.set_yscale("linear")
    _finish(figure, [axis for axis in (loss_axis, acc_axis) if axis.get_legend_handles_labels()[0]], title, path)
