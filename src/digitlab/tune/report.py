"""A study's report, `digitlab report STUDY_DIR`: REPORT.md with the best trials, Optuna's own figures (optimisation
history, learning curves, parameter importances; its matplotlib backend, so no plotly), the retrained best beside
the paper's LSTM and the lstm-best recipe, and results.json. Built from the study's storage and the run
directories in the folder alone: no training."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import optuna  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from digitlab import recipes  # noqa: E402
from digitlab.config import TrainConfig  # noqa: E402
from digitlab.models import MODELS  # noqa: E402
from digitlab.paper.report import paper_tables  # noqa: E402
from digitlab.store import rundir  # noqa: E402
from digitlab.store.files import read_json, write_json  # noqa: E402
from digitlab.training.metrics import model_accuracy  # noqa: E402
from digitlab.tune import space  # noqa: E402
from digitlab.tune.progress import Tally, outcome  # noqa: E402
from digitlab.tune.retrain import BEST, RECIPE, RETRAINED  # noqa: E402
from digitlab.tune.storage import reopen, shown  # noqa: E402
from digitlab.tune.study import MACHINE  # noqa: E402

BEST_ROWS = 10  # trials in the best-trials table
COMPARED = ("paper-lstm", "lstm-best")  # the recipes the retrained best stands beside


def build(folder: Path) -> Path:
    """Write STUDY_DIR/REPORT.md, figures/*.png and results.json; return the report's path."""
    folder = Path(folder)
    recorded, study = reopen(folder)
    trials = study.get_trials(deepcopy=False)
    now = Tally(trials)
    identity = study.user_attrs.get("digitlab", {})
    figures = folder / "figures"
    figures.mkdir(exist_ok=True)
    lines = header(recorded, identity, now)
    lines += best_trials(now)
    searched = identity.get("space")
    if searched:
        lines += ["## The search space", ""]
        lines += [f"- {param.describe()}" for param in space.parse(searched, "the study's space").values()]
        lines.append("")
    lines += figure_sections(study, now, figures)
    retrained = retrained_runs(folder)
    lines += comparison(folder, retrained, now, identity)
    write_json(folder / "results.json", {
        "study": {k: v for k, v in recorded.items() if k != "url"} | {"storage": shown(recorded["url"])},
        "identity": identity,
        "trials": [trial_record(t) for t in trials],
        "retrained": [{"run_dir": str(run)} | summary for run, summary in retrained],
    })  # fmt: skip
    report = folder / "REPORT.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def header(recorded: dict, identity: dict, now: Tally) -> list[str]:
    settings = identity.get("settings", {})
    budget = identity.get("trial_seconds")
    pruned = [t for t in now.trials if t.state == TrialState.PRUNED]
    diverged = sum("diverged" in t.user_attrs for t in pruned)
    durations = [t.duration.total_seconds() for t in now.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                 and t.duration is not None]  # fmt: skip
    timing = (
        f"{sum(durations) / 60:.1f} min of trials, {sum(durations) / len(durations):.0f} s per trial on average"
        if durations
        else "no finished trial yet"
    )
    failed = now.count(TrialState.FAIL)
    return [
        f"# Hyperparameter search: study {recorded['study_name']!r} ({recorded.get('model')})",
        "",
        f"- storage: `{shown(recorded['url'])}`; started with `{recorded.get('command', '?')}`",
        f"- objective: {identity.get('objective', '?')}; the test set is not touched by the trials",
        f"- each trial: {settings.get('epochs', '?')} epochs"
        + (f", stopped at {budget:g} s of training" if budget else "")
        + f", {settings.get('val_size', '?')} training images held out for validation, "
        f"seed {settings.get('seed', '?')}",
        f"- trials: {now.finished} finished ({now.count(TrialState.COMPLETE)} complete, {len(pruned)} pruned"
        + (f", of which {diverged} diverged" if diverged else "")
        + ")"
        + (f", {failed} failed (killed, or surplus; a killed trial was re-run with its parameters)" if failed else "")
        + (f", {now.count(TrialState.RUNNING)} running" if now.count(TrialState.RUNNING) else "")
        + f"; {timing}",
        "",
    ]


def best_trials(now: Tally) -> list[str]:
    complete = sorted(
        (t for t in now.trials if t.state == TrialState.COMPLETE and t.value is not None),
        key=lambda t: (-t.value, t.number),
    )[:BEST_ROWS]
    lines = [f"## The best trials ({len(complete)} of {now.count(TrialState.COMPLETE)} complete)", ""]
    if not complete:
        return lines + ["No trial has completed yet.", ""]
    names = list(dict.fromkeys(name for t in complete for name in t.params))
    lines.append("| rank | trial | validation acc | epochs | training s | " + " | ".join(names) + " |")
    lines.append("|---:|---:|---:|---:|---:|" + "---:|" * len(names))
    for rank, trial in enumerate(complete, start=1):
        attrs = trial.user_attrs
        cells = [str(rank), str(trial.number), f"{trial.value:.2%}", f"{attrs.get('epochs', 0):g}",
                 f"{attrs.get('train_seconds', 0):.0f}" + (" (budget)" if "stopped" in attrs else "")]  # fmt: skip
        cells += [value_text(trial.params[name]) if name in trial.params else "" for name in names]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def value_text(value) -> str:
    if value is None:
        return "default"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def figure_sections(study: optuna.Study, now: Tally, figures: Path) -> list[str]:
    from optuna.visualization import matplotlib as plots

    lines = []
    sections = (
        ("Optimisation history", "history.png", plots.plot_optimization_history, 1),
        ("Learning curves (validation accuracy a quarter epoch apart; pruned trials stop early)", "curves.png",
         plots.plot_intermediate_values, 1),
        ("Parameter importances", "importances.png", plots.plot_param_importances, 2),
    )  # fmt: skip
    for title, name, plot, needed in sections:
        lines += [f"## {title}", ""]
        if now.count(TrialState.COMPLETE) < needed:
            lines += [f"Needs {needed} complete trial{'s' if needed > 1 else ''}.", ""]
            continue
        problem = save_figure(plot, study, figures / name)
        lines += [f"![{title}](figures/{name})" if problem is None else f"Not drawn: {problem}", ""]
    return lines


def save_figure(plot, study: optuna.Study, path: Path) -> str | None:
    """Draw one of Optuna's matplotlib figures into `path`; the reason when it cannot be drawn."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's matplotlib plots are marked experimental
            axes = plot(study)
    except (ValueError, RuntimeError, ZeroDivisionError) as error:
        return str(error).splitlines()[0]
    figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
    figure.set_size_inches(9, 5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def retrained_runs(folder: Path) -> list[tuple[Path, dict]]:
    """The finished retrainings in the folder (best/, best-seed-<s>/): their test accuracy and time."""
    runs = []
    for run in sorted(folder.glob(f"{BEST}*")):
        if not run.is_dir() or "-previous-" in run.name or not rundir.is_finished(run):
            continue
        result, config = read_json(run / rundir.RESULT), rundir.load_config(run)
        averaged = result.get("weights") == rundir.AVERAGE_WEIGHTS
        runs.append((run, {
            "seed": config.seed, "test_acc": model_accuracy(result["test"], "test", averaged),
            "train_seconds": result["train_seconds_total"], "epochs": result["epochs"], "config": config.to_dict(),
            "trial": (read_json(run / RETRAINED) if (run / RETRAINED).is_file() else {}).get("trial"),
        }))  # fmt: skip
    return runs


def comparison(folder: Path, retrained: list[tuple[Path, dict]], now: Tally, identity: dict) -> list[str]:
    """The retrained best beside the paper's LSTM (Su 2018, Table 4) and the lstm-best recipe, results then
    settings."""
    lines = ["## The best trial, retrained, beside the paper's LSTM", ""]
    if not retrained:
        best = now.best
        more = f" (the best so far is trial {best.number}: {outcome(best)})" if best else ""
        return lines + [f"Not retrained yet{more}: run `digitlab tune ... --retrain-only`.", ""]
    paper = paper_tables()["tables"]["table4"]
    paper_acc = paper["test_accuracy_percent"]["lstm"][-1]
    paper_minutes = sum(paper["train_seconds"]["lstm"]) / 60
    lines += [
        "| run | test accuracy | epochs | batch | optimizer, lr | schedule | training min |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for run, summary in retrained:
        config = summary["config"]
        lines.append(
            f"| this study's best (trial {summary['trial']}), seed {summary['seed']}: `{run.name}/` | "
            f"**{summary['test_acc']:.2%}** | {summary['epochs']} | {config['batch_size']} | {config['optimizer']} "
            f"{config['lr']:.3g} | {config['schedule']} | {summary['train_seconds'] / 60:.1f} |"
        )
    lines.append(
        f"| Su (2018), Table 4: the paper's LSTM | {paper_acc:.2f}% | {paper['epochs']} | {paper['batch_size']} | "
        f"adam 0.001 | constant | {paper_minutes:.1f} (the paper's machine) |"
    )
    measured = []
    for name in COMPARED:
        recipe = recipes.load(name)
        config, result = TrainConfig(**recipe.settings), recipe.result or "not measured yet"
        accuracy = result.split(" test accuracy")[0] if " test accuracy" in result else "(below)"
        minutes = re.search(r"\(?([\d.]+) min", result)
        lines.append(
            f"| the `{name}` recipe, measured | {accuracy} | {config.epochs} | {config.batch_size} | "
            f"{config.optimizer} {config.lr:g} | {config.schedule} | {minutes[1] if minutes else ''} |"
        )
        measured.append(f"- `{name}`: {result}")
    lines += ["", *measured]
    lines += ["", "Settings side by side (the retrained best is trained on all training images, as the recipes' "
              "final runs are not: they hold out 5,000 for validation, as this study's trials did):", ""]  # fmt: skip
    configs = [("this study's best", TrainConfig(**retrained[0][1]["config"]))]
    configs += [(f"`{name}`", TrainConfig(**recipes.load(name).settings)) for name in COMPARED]
    names = [
        name for name in TrainConfig.__dataclass_fields__
        if name not in MACHINE and len({repr(setting(config, name)) for _, config in configs}) > 1
    ]  # fmt: skip
    lines += ["| setting | " + " | ".join(label for label, _ in configs) + " |", "|---|" + "---|" * len(configs)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(value_text(setting(config, name)) for _, config in configs) + " |")
    return lines + [
        "",
        f"The best trial's recipe: `{folder / RECIPE}` (`digitlab train --config {folder / RECIPE}`).",
        "",
    ]


def setting(config: TrainConfig, name: str):
    """A setting as it trains: a model's own size where the config leaves it to the model."""
    value = getattr(config, name)
    if value is None and name in ("hidden_size", "num_layers", "channels"):
        return getattr(MODELS[config.model], f"default_{name}", None)
    return value


def trial_record(trial: FrozenTrial) -> dict:
    return {
        "number": trial.number, "state": trial.state.name.lower(), "value": trial.value, "params": trial.params,
        "user_attrs": trial.user_attrs, "intermediate_values": trial.intermediate_values,
        "seconds": trial.duration.total_seconds() if trial.duration else None,
    }  # fmt: skip
