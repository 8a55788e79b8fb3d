"""One function per CLI subcommand: the work behind `digitlab data|models|train|evaluate|predict|reproduce|report`."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import torch

from digitlab import console, recipes
from digitlab.config import RESUMABLE_CHANGES, TrainConfig, flag, parse_seeds
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


def predict(
    inputs: list[str],
    as_json: bool = False,
    show_dir: str | None = None,
    device: str = "cpu",
    weights: str = "auto",
    samples: int | None = None,
    data_dir: str | None = None,
) -> int:
    """`digitlab predict [MODEL] [IMAGE ...]`: recognise the digit in each image with MODEL (a run directory or
    an .onnx file; the first argument is one only if it names one, else the default model is used) and print a
    table, or JSON. A file that cannot be used is reported on stderr, one line, and the others still answered;
    the exit code is then 2. A run directory without images classifies MNIST test digits, as it always did."""
    from digitlab.inference.classifier import is_model, open_classifier
    from digitlab.inference.recognise import find_images, predict_files

    model, images = (inputs[0], inputs[1:]) if inputs and is_model(inputs[0]) else (None, list(inputs))
    if not images:
        if model is None or Path(model).suffix.lower() == ".onnx":
            raise ConfigError(
                "pass the image files to recognise: digitlab predict [MODEL] IMAGE ... (or a run directory alone "
                "to classify MNIST test digits)"
            )
        predict_test_digits(model, 5 if samples is None else samples, data_dir, weights)
        return 0
    if samples is not None or data_dir is not None:
        raise ConfigError("--test-samples and --data-dir choose MNIST test digits; drop them when passing images")
    only = Path(images[0])
    if model is None and len(images) == 1 and only.is_dir() and find_images(images) == images:
        raise ConfigError(
            f"{only} is neither a run directory (no config.json) nor a folder of image files; pass a run directory "
            f"printed by 'digitlab train', or images"
        )
    classifier = open_classifier(model, device=device, weights=weights)
    results = predict_files(classifier, find_images(images), show_dir)
    failed = [result for result in results if "error" in result]
    for result in failed:
        print(f"digitlab: {result['error']}", file=sys.stderr)
    if as_json:
        print(json.dumps({"model": classifier.source, "predictions": results}, indent=2))
    elif len(failed) < len(results):
        print(console.format_predictions([result for result in results if "error" not in result]))
    return 2 if failed else 0


def predict_test_digits(run_dir: str, samples: int, data_dir: str | None, weights: str = "auto") -> None:
    """Classify `samples` MNIST test digits (chosen at random, seed 0) with a run's model, each drawn as text."""
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
    quick: bool, dry_run: bool, command: str, retime: bool = False, shard: str | None = None,
) -> None:  # fmt: skip
    """Run a reproduction's cells (a shard's share of them with --shard K/N or in a Slurm array task), then
    build its report; a shard builds it only when the whole grid has finished (else it says what is left)."""
    from digitlab.paper import experiments
    from digitlab.shard import Shard
    from digitlab.training.device import parse_device, resolve_precision

    share = Shard.parse(shard)  # a bad --shard stops here, before anything is read or written
    base = TrainConfig(data_dir=data_dir, precision=precision, device=device, threads=threads).validate()
    # An unusable device fails now, not after the data has loaded; `auto` precision is resolved once, so that
    # every cell (and a restarted reproduction) names the precision that ran.
    base = base.replace(precision=resolve_precision(base.precision, parse_device(base.device), print))
    cells = experiments.reproduce(
        names, Path(out), parse_seeds(seeds), base, quick, dry_run, command, retime=retime, shard=share
    )
    if dry_run:
        print(experiments.describe(cells, Path(out), examples=60_000, retime=retime))
        return
    missing = experiments.unfinished(Path(out))
    if not share.whole and missing:
        print(
            f"shard {share}: no report yet, {len(missing)} cells of the grid have not finished (other shards' or "
            f"still to come); once every shard has finished: digitlab report {out}"
        )
        return
    report(out)


def report(out: str) -> None:
    """Build a reproduction's report from its cells, whichever processes or machines trained them, and name
    the planned cells that have not finished. A `digitlab tune` study folder gets the study's report."""
    from digitlab.paper.experiments import unfinished
    from digitlab.paper.report import build as build_report
    from digitlab.tune import STUDY_FILE

    if (Path(out) / STUDY_FILE).is_file():
        study_report(out)
        return
    print(f"report: {build_report(Path(out))}")
    missing = unfinished(Path(out))
    if missing:
        shown = ", ".join(f"{name} ({state})" for name, state in missing[:8])
        more = f" and {len(missing) - 8} more (REPORT.md lists them)" if len(missing) > 8 else ""
        print(f"incomplete: {len(missing)} planned cells have not finished: {shown}{more}")


def tune(search: dict, retrain: str = "after", retrain_seeds: str | None = None, shard: str | None = None) -> None:
    """`digitlab tune`: the search (unless retrain is "only"), then the best trial retrained (unless "no"), its
    recipe and the study's report."""
    from digitlab import tune as tuning

    tuning.require()  # optuna is an optional extra: one line says what to install
    from digitlab.shard import Shard
    from digitlab.tune import retrain as retraining
    from digitlab.tune import study as studies
    from digitlab.tune import trials as searching

    settings = studies.Search(**search)
    seeds = parse_seeds(retrain_seeds, "--retrain-seeds") if retrain_seeds else [settings.seed]
    part = Shard.parse(shard) if retrain != "no" else None  # a bad --shard fails before the search
    opened = studies.open_study(settings, log=_say)
    dataset = studies.load_data(opened)
    if retrain != "only":
        searching.run(opened, dataset)
    if retrain == "no":
        again = " ".join(["digitlab"] + sys.argv[1:]).replace("--no-retrain", "--retrain-only")
        print(f"to retrain the best trial once every worker has finished: {again}")
        return
    retraining.retrain(opened, seeds, part, dataset)
    print(f"recipe: {settings.folder / retraining.RECIPE}")
    study_report(str(settings.folder))


def _say(*args, **kwargs) -> None:
    print(*args, **kwargs, flush=True)  # a worker's lines reach a log file as they happen


def study_report(folder: str) -> None:
    from digitlab import tune as tuning

    tuning.require()
    from digitlab.tune.report import build as build_study_report

    print(f"report: {build_study_report(Path(folder))}")


def compare(run_dirs: list[str], out: str | None = None) -> Path:
    """Print runs side by side (the config fields that differ, final numbers) and draw their curves on shared
    axes into OUT/compare.png (default: a new folder compare-<time> in the current directory); return it."""
    import time

    from digitlab.errors import RunError
    from digitlab.paper.plots import compare_figure  # matplotlib loads only for the commands that draw
    from digitlab.store import runs

    found = runs.read_runs(run_dirs)
    fields = runs.differing(found)
    rows = [{"run": r.label, "config": r.config, "final": r.final(), "state": r.state()} for r in found]
    print(console.format_comparison(rows, fields))
    if not fields:
        print("(their configs are the same but for the run directory)")
    folder = Path(out) if out else Path(f"compare-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot write {folder}: {error.strerror or error}; choose a writable --out") from None
    figure = folder / "compare.png"
    named = ", ".join(fields[:4]) + (f" and {len(fields) - 4} more" if len(fields) > 4 else "")
    verb = "differs" if len(fields) == 1 else "differ"
    title = f"{len(found)} runs: {named} {verb}" if fields else f"{len(found)} runs of the same config"
    compare_figure(figure, title, [(r.label, runs.curves(r)) for r in found])
    print(f"figure: {figure}")
    return figure


def export(model: str, fmt: str, out: str | None, weights: str = "auto", opset: int | None = None) -> dict:
    """Write a finished run's model as a file of `fmt` (onnx), verified against PyTorch, and say what was checked."""
    from digitlab.inference.export import OPSET, export_onnx  # torch.onnx and onnx load only for this command

    if fmt != "onnx":
        raise ConfigError(f"unknown export format {fmt!r}; the one format is onnx")
    result = export_onnx(Path(model), out, weights=weights, opset=OPSET if opset is None else opset)
    sizes = " and ".join(str(size) for size in result["batch_sizes"])
    print(
        f"exported {model} ({result['model']}, {result['weights']}) to {result['path']}: ONNX opset {result['opset']}, "
        f"{result['bytes'] / 1e6:.2f} MB\n"
        f"verified with onnxruntime on {result['images']} at batch sizes {sizes}: logits within "
        f"{result['max_difference']:.2g} of PyTorch's (limit {result['tolerance']:g}); {result['seconds']:.1f} s"
    )
    return result


def serve(model: str | None, host: str, port: int, device: str = "cpu", weights: str = "auto") -> None:
    """Serve one model over HTTP until Ctrl-C: the port is bound first (a port in use fails at once), then the
    model loads once, then uvicorn answers requests (digitlab.serve.app says which)."""
    from digitlab import serve as serving

    serving.require()  # fastapi and uvicorn are an optional extra: one line says what to install
    import uvicorn

    from digitlab.inference.classifier import open_classifier
    from digitlab.serve.app import create_app

    sock = serving.listen(host, port)
    try:
        classifier = open_classifier(model, device=device, weights=weights)
        app = create_app(classifier)
        print(f"serving {classifier.source} at {serving.url(sock)} (Ctrl-C stops)", flush=True)
        uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])
    finally:
        sock.close()
