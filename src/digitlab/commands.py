"""One function per CLI subcommand: the work behind `digitlab data|models|train|evaluate|predict|reproduce|report`."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import torch

from digitlab import console, recipes
from digitlab.config import RESUMABLE_CHANGES, TrainConfig, flag
from digitlab.data.dataset import Dataset, load, normalize
from digitlab.data.fetch import named_folder
from digitlab.data.known import KNOWN
from digitlab.errors import ConfigError
from digitlab.inference.load import load_model
from digitlab.inference.predict import probabilities
from digitlab.models import MODELS, build, build_from_config, count_parameters
from digitlab.store import rundir
from digitlab.training.evaluate import evaluate
from digitlab.training.fit import fit


def train(given: dict, resume_dir: str | None = None, recipe: str | None = None) -> Path:
    """Train with the flags given, over a recipe's settings when one is named; with `resume_dir`, continue
    that run with its saved config."""
    if resume_dir is None:
        settings = recipes.load(recipe).settings if recipe else {}
        return fit(TrainConfig(**(settings | given)))
    if recipe:
        raise ConfigError("--resume goes on with the run's own config.json; drop --config")
    config = rundir.load_config(Path(resume_dir))
    changed = {name for name, value in given.items() if getattr(config, name) != value} - {"run_dir"}
    if changed - RESUMABLE_CHANGES:
        refused = ", ".join(flag(name) for name in sorted(changed - RESUMABLE_CHANGES))
        allowed = ", ".join(flag(name) for name in sorted(RESUMABLE_CHANGES - {"run_dir"}))
        raise ConfigError(f"--resume keeps the run's own settings; drop {refused} (only {allowed} may change)")
    if "epochs" in changed and config.schedule != "constant":
        raise ConfigError(
            f"the run's {config.schedule} schedule is laid over its {config.epochs} epochs, so --resume cannot "
            f"change --epochs; drop --epochs, or start a new run"
        )
    return fit(config.replace(**(given | {"run_dir": resume_dir})), resuming=True)


def recipes_list() -> None:
    rows = []
    for name in recipes.names():
        recipe = recipes.load(name)
        config = TrainConfig(**recipe.settings)
        size = count_parameters(build_from_config(config, (28, 28), 10))
        rows.append((name, config.model, size, recipe.summary, recipe.result or "not measured yet"))
    print(console.format_recipes(rows))


def data(data_dir: str | None, expect: str = "auto") -> None:
    dataset = load(data_dir, expect=expect)
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


def models() -> None:
    rows = [
        (name, (cls.__doc__ or "").strip().splitlines()[0], count_parameters(build(name, (28, 28), 10)))
        for name, cls in MODELS.items()
    ]
    print("for 28x28 images and 10 classes, default sizes:")
    print(console.format_models(rows))


def evaluate_run(run_dir: str, data_dir: str | None, as_json: bool = False, weights: str = "auto") -> None:
    """Evaluate a finished run on its test data, write evaluation/ into the run directory, print the result:
    as text, or with `as_json` as one JSON document, the only thing on stdout (notes go to stderr)."""
    from digitlab.inference.assessment import assess  # matplotlib and scipy load only for this command

    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        model, info = load_model(Path(run_dir), weights=weights)
        dataset = _matching_data(data_dir, info)
        result = evaluate(model, normalize(dataset.test_images), dataset.test_labels, 2000)
        record = assess(
            Path(run_dir),
            dataset.test_images,
            dataset.test_labels,
            result["predictions"],
            result["loss"],
            info["num_classes"],
            class_names=info.get("class_names"),
            data={"source": dataset.source, "dataset": dataset.name, "weights": info["weights"]},
        )
    print(json.dumps(record, indent=2) if as_json else console.format_evaluation(record))


def predict(run_dir: str, samples: int, data_dir: str | None, weights: str = "auto") -> None:
    if samples <= 0:
        raise ConfigError(f"--test-samples must be positive, got {samples}")
    model, info = load_model(Path(run_dir), weights=weights)
    dataset = _matching_data(data_dir, info)
    samples = min(samples, len(dataset.test_labels))
    chosen = torch.randperm(len(dataset.test_labels), generator=torch.Generator().manual_seed(0))[:samples]
    probs = probabilities(model, dataset.test_images[chosen])
    for index, p in zip(chosen.tolist(), probs):
        label, guess = int(dataset.test_labels[index]), int(p.argmax())
        names = info.get("class_names")
        print(
            f"test image {index}: predicted {console.class_name(guess, names)} ({p[guess]:.1%}), "
            f"true {console.class_name(label, names)}{'' if guess == label else '  <- wrong'}"
        )
        print("\n".join("    " + line for line in console.ascii_digit(dataset.test_images[index])))


def _matching_data(data_dir: str | None, info: dict) -> Dataset:
    """The test data to evaluate a run's model on, of its image size and classes: from a folder the user
    names, any files but another known dataset than the run's (a person's own test digits are custom data);
    else the dataset the run was trained on (runs before 0.2 did not record it: MNIST then)."""
    trained_on = info.get("dataset", "auto")
    if not named_folder(data_dir):
        dataset = load(data_dir, expect=trained_on)
    else:
        dataset = load(data_dir)
        if dataset.verified and trained_on in KNOWN and dataset.name != trained_on:
            raise ConfigError(
                f"the model was trained on {KNOWN[trained_on].title} but {named_folder(data_dir)} holds "
                f"{dataset.title}; pass the run's own --data-dir"
            )
    if list(dataset.image_shape) != list(info["image_shape"]):
        raise ConfigError(
            f"the model was trained on {info['image_shape']} images but this data has "
            f"{list(dataset.image_shape)}; pass the run's own --data-dir"
        )
    if dataset.num_classes > info["num_classes"]:
        raise ConfigError(
            f"the model was trained on {info['num_classes']} classes but this data has labels up to "
            f"{dataset.num_classes - 1}; pass the run's own --data-dir"
        )
    return dataset


def reproduce(
    names: list[str], out: str, seeds: str, data_dir: str | None, precision: str, device: str, threads: int,
    quick: bool, dry_run: bool, command: str, retime: bool = False,
) -> None:  # fmt: skip
    from digitlab.paper import experiments
    from digitlab.paper.report import build as build_report
    from digitlab.training.device import parse_device, resolve_precision

    base = TrainConfig(data_dir=data_dir, precision=precision, device=device, threads=threads).validate()
    # An unusable device fails now, not after the data has loaded; `auto` precision is resolved once, so that
    # every cell (and a restarted reproduction) names the precision that ran.
    base = base.replace(precision=resolve_precision(base.precision, parse_device(base.device), print))
    cells = experiments.reproduce(
        names, Path(out), experiments.parse_seeds(seeds), base, quick, dry_run, command, retime=retime
    )
    if dry_run:
        print(experiments.describe(cells, Path(out), examples=60_000, retime=retime))
        return
    print(f"report: {build_report(Path(out))}")


def report(out: str) -> None:
    from digitlab.paper.report import build as build_report

    print(f"report: {build_report(Path(out))}")
