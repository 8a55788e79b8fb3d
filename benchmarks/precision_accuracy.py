"""Does bf16 change what the models learn? Test accuracy after N epochs, fp32 vs bf16, over seeds.

    python benchmarks/precision_accuracy.py [--models lstm,blstm,cnn] [--seeds 3] [--epochs 3] [--out DIR]

Each (model, precision, seed) is an ordinary run directory under --out (finished ones are reused when the
script is started again). Prints per model: fp32 and bf16 mean, sd and 95% CI of the final test accuracy,
the paired bf16 - fp32 difference over seeds, and whether bf16's mean lies within fp32's seed-to-seed range.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from digitlab import runs
from digitlab.config import TrainConfig
from digitlab.stats import paired, summarize
from digitlab.train import fit


def final_accuracy(config: TrainConfig) -> float:
    run_dir = Path(config.run_dir)
    if not runs.is_finished(run_dir):
        fit(config, log=lambda *args, **kwargs: None)
    return runs.read_json(run_dir / runs.RESULT)["final"]["test/acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lstm,blstm,cnn")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="runs/precision-accuracy")
    args = parser.parse_args()
    print(f"# bf16 vs fp32: test accuracy after {args.epochs} epochs, batch {args.batch_size}, Adam lr 0.001, "
          f"seeds 0..{args.seeds - 1}\n")
    print("| model | fp32 acc % (mean ± sd [95% CI]) | bf16 acc % | bf16 - fp32 (paired) | fp32 seed range | "
          "bf16 mean within it |")
    print("|---|---|---|---|---|---|")
    for model in args.models.split(","):
        results = {}
        for precision in ("fp32", "bf16"):
            results[precision] = [final_accuracy(TrainConfig(
                model=model, precision=precision, seed=seed, epochs=args.epochs, batch_size=args.batch_size,
                data_dir=args.data_dir, progress="none",
                run_dir=str(Path(args.out) / f"{model}-{precision}-s{seed}"))) for seed in range(args.seeds)]
        fp32, bf16 = summarize(results["fp32"]), summarize(results["bf16"])
        low, high = min(results["fp32"]), max(results["fp32"])
        within = low <= bf16.mean <= high
        print(f"| {model} | {fp32.format(scale=100)} | {bf16.format(scale=100)} | "
              f"{paired(results['bf16'], results['fp32']).difference.format(scale=100)} | "
              f"{100 * low:.2f}-{100 * high:.2f} | {'yes' if within else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
