"""The levers of the CPU speedrun (issue 21, part 1), each measured side by side in one run: training images per
second of digitlab's models at the speedrun's batch, model by model and lever by lever.

    python benchmarks/speedrun_levers.py                   # vgg (fast) and speedcnn (speedrun), every lever
    python benchmarks/speedrun_levers.py --no-compile      # without torch.compile (it takes a minute to build)

Levers: the model (vgg, the fast recipe's; speedcnn, the speedrun recipe's), the memory layout (NCHW or
channels-last weights), the precision (fp32, or bf16 autocast where the CPU computes bf16 natively), torch.compile
(inductor, where a C++ compiler is present; its build time reported apart), and torch threads (1 or all cores).
A step is what digitlab's loop does: gather a batch by index, forward, cross-entropy, backward, AdamW. Each setting
gets --warmup untimed steps, then --rounds rounds of --steps steps alternate over all settings (a slow spell of
the machine hits each alike); the median round gives images/s, and the ratio is against vgg, NCHW, fp32, all
threads (the fast recipe as it runs). Writes benchmarks/results/speedrun_levers.md and .json.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import common
from digitlab.data.dataset import normalize
from digitlab.models import build
from digitlab.perf.benchmark_report import Column, log, machine, markdown_table
from digitlab.perf.machine import cpu_computes_bf16, cpu_pressure, physical_cores

BATCH = 128  # both recipes'


class Setting:
    """One lever setting: a model with its layout, precision, compilation and threads, and its training step."""

    def __init__(self, model: str, layout: str, precision: str, compiled: bool, threads: int):
        self.name = {"model": model, "layout": layout, "precision": precision,
                     "compiled": "inductor" if compiled else "eager", "threads": threads}  # fmt: skip
        torch.manual_seed(0)
        self.model = build(model, (28, 28), 10)
        memory = torch.channels_last if layout == "channels-last" else torch.contiguous_format
        self.model = self.model.to(memory_format=memory)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=5e-4)
        self.forward = torch.compile(self.model) if compiled else self.model
        self.bf16, self.threads, self.build_seconds = precision == "bf16", threads, 0.0
        self.rounds: list[float] = []

    def step(self, images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16, enabled=self.bf16):
            logits = self.forward(images[index])
        nn.functional.cross_entropy(logits.float(), labels[index]).backward()
        self.optimizer.step()

    def run(self, images, labels, batches: list[torch.Tensor]) -> float:
        """The steps over `batches`, timed; returns images per second."""
        torch.set_num_threads(self.threads)
        start = time.perf_counter()
        for index in batches:
            self.step(images, labels, index)
        return len(batches) * BATCH / (time.perf_counter() - start)


def settings(args) -> list[Setting]:
    cores, bf16 = physical_cores() or torch.get_num_threads(), cpu_computes_bf16()
    chosen = [("vgg", "NCHW", "fp32", False, cores), ("vgg", "channels-last", "fp32", False, cores)]
    chosen += [("speedcnn", "NCHW", "fp32", False, cores), ("speedcnn", "channels-last", "fp32", False, cores)]
    chosen += [("speedcnn", "channels-last", "fp32", False, 1)] if cores > 1 else []
    chosen += (
        [("vgg", "NCHW", "bf16", False, cores), ("speedcnn", "channels-last", "bf16", False, cores)] if bf16 else []
    )
    if not args.no_compile and shutil.which("c++"):
        chosen += [("speedcnn", "channels-last", "fp32", True, cores)]
    return [Setting(*setting) for setting in chosen]


def built(row: dict) -> str:
    return f", built in {row['build_seconds']:.0f} s" if row["build_seconds"] else ""


COLUMNS = [
    Column("model", lambda r: r["model"], "left"),
    Column("layout", lambda r: r["layout"], "left"),
    Column("precision", lambda r: r["precision"], "left"),
    Column("compiled", lambda r: r["compiled"] + built(r), "left"),
    Column("threads", lambda r: str(r["threads"])),
    Column("images/s (median)", lambda r: f"{r['images_per_second']:,.0f}"),
    Column("vs vgg NCHW fp32", lambda r: f"{r['ratio']:.2f}x"),
    Column("s per 45,000 images", lambda r: f"{45_000 / r['images_per_second']:.1f}"),
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--steps", type=common.positive, default=40, help="steps per timed round")
    parser.add_argument("--rounds", type=common.positive, default=5, help="timed rounds per setting")
    parser.add_argument("--warmup", type=common.positive, default=5, help="untimed steps per setting first")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    parser.add_argument("--stem", default="speedrun_levers", help="results file stem")
    common.add_data_dir(parser)
    common.add_out(parser)
    args = parser.parse_args(argv)
    info = machine()
    data = common.load_data(args.data_dir)
    images = normalize(data.train_images[: 20 * BATCH])  # what the loop trains on
    labels = data.train_labels[: 20 * BATCH]
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, len(images), (BATCH,), generator=generator) for _ in range(args.steps)]
    chosen = settings(args)
    for setting in chosen:  # warm-up, and torch.compile's build, off the clock
        log(f"warming up {setting.name}")
        start = time.perf_counter()
        setting.run(images, labels, batches[: args.warmup])
        setting.build_seconds = time.perf_counter() - start if setting.name["compiled"] == "inductor" else 0.0
    for round_number in range(args.rounds):
        for setting in chosen:
            setting.rounds.append(setting.run(images, labels, batches))
        log(f"round {round_number + 1} of {args.rounds} done")
    rows = [setting.name | {"images_per_second": statistics.median(setting.rounds), "rounds": setting.rounds,
                            "build_seconds": setting.build_seconds} for setting in chosen]  # fmt: skip
    for row in rows:
        row["ratio"] = row["images_per_second"] / rows[0]["images_per_second"]
    result = common.results(info, batch=BATCH, steps=args.steps, rounds=args.rounds, rows=rows,
                            cpu_pressure_after=cpu_pressure())  # fmt: skip
    lines = [
        "# CPU speedrun levers: training images per second, side by side", "",
        *common.header_lines(result), f"- command: `{result['command']}`",
        f"- batch {BATCH}, {args.rounds} rounds of {args.steps} steps per setting, settings alternating; "
        f"{args.warmup} untimed steps each first (torch.compile's build among them, reported apart)", "",
        *markdown_table(rows, COLUMNS), "",
        "- bf16 rows only where the CPU computes bf16 natively (`--precision auto` chooses it there)",
        f"- cpu pressure after: {result['cpu_pressure_after']}",
    ]  # fmt: skip
    common.save_report(Path(args.out) / args.stem, result, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
