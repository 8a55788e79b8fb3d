"""What the per-step divergence check costs on a device: the trainer's epoch with the verdict read every step
(--check-every 1: a host-device synchronisation per step) and every --every steps (the ring of kept states),
side by side on the same examples, alternating.

    python benchmarks/step_check.py --device cuda             # lstm and cnn at batches 128 and 500, 3 rounds
    python benchmarks/step_check.py --device cpu --steps 20   # a rehearsal: the CPU reads every step by default

Writes benchmarks/results/step_check-<device type>.md and .json.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import common
from digitlab.config import TrainConfig
from digitlab.data.dataset import normalize
from digitlab.perf.benchmark_report import log, machine, machine_lines
from digitlab.perf.machine import cpu_pressure_avg10
from digitlab.store.files import write_json
from one_epoch import trainer_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the device to train on (default cuda)")
    parser.add_argument("--models", default="lstm,cnn", help="comma-separated models")
    parser.add_argument("--batch-sizes", default="128,500", help="comma-separated batch sizes")
    parser.add_argument("--steps", type=common.positive, default=100, help="optimizer steps per timed epoch")
    parser.add_argument("--rounds", type=common.positive, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--every", type=common.positive, default=32, help="the deferred reads' --check-every")
    common.add_data_dir(parser)
    args = parser.parse_args()
    device = torch.device(args.device)
    info = machine() | {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    rows = []
    for model in args.models.split(","):
        for batch_size in map(int, args.batch_sizes.split(",")):
            config = TrainConfig(model=model, batch_size=batch_size, epochs=1, device=args.device, progress="none")
            data = common.load_data(args.data_dir, train_limit=args.steps * batch_size)
            images = normalize(data.train_images).to(device)
            seconds = {1: [], args.every: []}
            for round_number in range(args.rounds):
                for every in seconds:
                    result = trainer_epoch(
                        config.replace(check_every=every), data, images, warmup_steps=3, device=device
                    )
                    seconds[every].append(result["trainer_seconds"])
                    log(f"{model} batch {batch_size} round {round_number + 1}, --check-every {every}: "
                        f"{result['trainer_seconds']:.3f} s")  # fmt: skip
            every, deferred = (statistics.median(values) for values in seconds.values())
            rows.append({
                "model": model, "batch_size": batch_size, "steps": args.steps, "every_step_s": every,
                "deferred_s": deferred, "speedup": every / deferred, "seconds": seconds,
                "cpu_pressure_avg10_after": cpu_pressure_avg10(),
            })  # fmt: skip
    lines = [
        f"# The step check's cost ({common.command()})",
        "",
        *machine_lines(info),
        f"- device: {info['device']}",
        "",
    ]
    lines += [
        f"| model | batch | steps | verdict read every step (s, median) | every {args.every} steps (s) | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['batch_size']} | {row['steps']} | {row['every_step_s']:.3f} | "
            f"{row['deferred_s']:.3f} | {row['speedup']:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    name = f"step_check-{device.type}"
    write_json(common.RESULTS / f"{name}.json", {"command": common.command(), "machine": info, "rows": rows})
    (common.RESULTS / f"{name}.md").write_text(text)


if __name__ == "__main__":
    main()
