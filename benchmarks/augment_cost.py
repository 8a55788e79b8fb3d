"""What batch augmentation costs: the trainer's epoch with each recipe's augmentation and without it, side by
side on the same examples, alternating; and the augmentation alone (drawing the grids and resampling one
batch, as the step does) beside the median step of the plain epoch, as a share of the step.

    python benchmarks/augment_cost.py                 # vgg (cnn-best) and lstm (lstm-best), 60 steps, 3 rounds
    python benchmarks/augment_cost.py --steps 100 --rounds 5

Writes benchmarks/results/augment_cost.md and .json.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import common
from digitlab.config import TrainConfig
from digitlab.data import augment
from digitlab.data.dataset import normalize
from digitlab.perf.benchmark_report import log, machine, machine_lines
from digitlab.perf.machine import cpu_pressure_avg10
from digitlab.perf.timer import Timer
from digitlab.recipes import load as load_recipe
from digitlab.store.files import write_json
from digitlab.training.loop import BACKGROUND, augmentation_of
from one_epoch import trainer_epoch

AUGMENTATION = ("rotate", "scale", "shift", "elastic")
CPU = torch.device("cpu")


def augmentation_seconds(config: TrainConfig, images, repeats: int) -> float:
    """Median seconds to draw one batch's grids and resample it, as training.loop does for each step."""
    augmentation = augmentation_of(config)
    timings = []
    for step in range(repeats):
        batch = images[step * config.batch_size : (step + 1) * config.batch_size]
        with Timer(CPU) as timer:
            grids = augment.draw(augmentation, len(batch), batch.shape[1:], config.seed, 0, step, CPU)
            augment.apply(batch, grids, BACKGROUND)
        timings.append(timer.result()["seconds"])
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default="cnn-best,lstm-best", help="comma-separated recipes to measure")
    parser.add_argument("--steps", type=common.positive, default=60, help="optimizer steps per timed epoch")
    parser.add_argument("--rounds", type=common.positive, default=3, help="alternating rounds (default 3)")
    common.add_data_dir(parser)
    args = parser.parse_args()
    info = machine()
    rows = []
    for name in args.recipes.split(","):
        settings = load_recipe(name).settings
        config = TrainConfig(**settings).replace(epochs=1, val_size=0, threads=0, ema_decay=0.0)
        data = common.load_data(args.data_dir, train_limit=args.steps * config.batch_size)
        images = normalize(data.train_images)
        plain = config.replace(**{field: 0.0 for field in AUGMENTATION})
        seconds = {"augmented": [], "plain": []}
        for round_number in range(args.rounds):
            for label, each in (("augmented", config), ("plain", plain)):
                result = trainer_epoch(each, data, images, warmup_steps=2)
                seconds[label].append(result["trainer_seconds"])
                log(f"{name} round {round_number + 1} {label}: {result['trainer_seconds']:.2f} s")
        augmented, baseline = statistics.median(seconds["augmented"]), statistics.median(seconds["plain"])
        alone = augmentation_seconds(config, images, repeats=args.steps)
        rows.append({
            "recipe": name, "model": config.model, "steps": args.steps, "augmented_s": augmented, "plain_s": baseline,
            "share_of_augmented_epoch": (augmented - baseline) / augmented, "seconds": seconds,
            "augmentation_alone_ms": alone * 1000, "step_ms": baseline / args.steps * 1000,
            "augmentation_share_of_step": alone / (baseline / args.steps),
            "cpu_pressure_avg10_after": cpu_pressure_avg10(),
        })  # fmt: skip
    lines = [f"# Augmentation cost ({common.command()})", "", *machine_lines(info), ""]
    lines += [
        "| recipe | model | steps | epoch with augmentation (s, median) | without (s) | difference's share | "
        "augmentation alone per step (ms) | plain step (ms) | its share of a step |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['recipe']} | {row['model']} | {row['steps']} | {row['augmented_s']:.2f} | {row['plain_s']:.2f} | "
            f"{row['share_of_augmented_epoch']:.1%} | {row['augmentation_alone_ms']:.2f} | {row['step_ms']:.1f} | "
            f"{row['augmentation_share_of_step']:.1%} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    write_json(common.RESULTS / "augment_cost.json", {"command": common.command(), "machine": info, "rows": rows})
    (common.RESULTS / "augment_cost.md").write_text(text)


if __name__ == "__main__":
    main()
