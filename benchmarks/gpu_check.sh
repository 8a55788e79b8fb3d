#!/usr/bin/env bash
# The prepared check of the CUDA path, for a machine with a CUDA GPU; about 7 minutes (at most 13, by the limits):
#   1. the gpu-marked tests (tests/gpu/: every model trains, resume is bit-identical with --deterministic,
#      bf16, fp16 with its grad scaler, --precision auto, DDP over NCCL when two GPUs are present);
#   2. one epoch of lstm, blstm and cnn at batch 500, fp32 and bf16, on CUDA and on this machine's CPU;
#   3. `digitlab reproduce table4 --quick --device cuda`;
#   4. benchmarks/step_check.py: the divergence check read every step beside every 32 (--check-every);
#   5. benchmarks/gpu_speedrun.sh: the GPU record of issue 21 (time to 99% test, the paper LSTM's epoch), its own
#      report written beside this one as benchmarks/results/gpu_speedrun-<date>.md (on the CPU: a --quick rehearsal,
#      kept only in this report);
# then writes one Markdown file of results: benchmarks/results/gpu_check-<date>.md, or the path given.
# Data: $DIGITLAB_DATA_DIR, else ../shared/data/mnist beside the repository, else digitlab's fetch chain.
# GPU_CHECK_DEVICE=cpu GPU_CHECK_TRAIN_ARGS="--train-limit 1000" runs the same steps on the CPU, small: a
# rehearsal of the script itself on a machine without a GPU (its numbers mean nothing).
# Each stage has a time limit (timeout), so that a hung stage costs its limit and the report is still written.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/gpu_check-$(date +%Y%m%d-%H%M).md}
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
device=${GPU_CHECK_DEVICE:-cuda}
read -r -a train_args <<< "${GPU_CHECK_TRAIN_ARGS:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${DIGITLAB_DATA_DIR:-}" ] && [ -d ../shared/data/mnist ]; then
    export DIGITLAB_DATA_DIR="$PWD/../shared/data/mnist"
fi
if [ "$device" = cuda ] && ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA GPU here; run this on a CUDA machine" >&2
    exit 2
fi

echo "== 1. gpu-marked tests" >&2
timeout 180 "$python" -m pytest -q -m gpu tests/gpu -p no:cacheprovider > "$work/tests.log" 2>&1
tests_status=$?

echo "== 2. one epoch per model, precision and device" >&2
wheres="$device cpu"
[ "$device" = cpu ] && wheres=cpu
for model in lstm blstm cnn; do
    for where in $wheres; do
        for precision in fp32 bf16; do
            run="$work/epoch-$model-$where-$precision"
            timeout 90 "$python" -m digitlab train --model "$model" --batch-size 500 --epochs 1 --device "$where" \
                --precision "$precision" --run-dir "$run" --progress none "${train_args[@]}" > "$run.log" 2>&1
        done
    done
done

echo "== 3. reproduce table4 --quick --device $device" >&2
timeout 150 "$python" -m digitlab reproduce table4 --quick --device "$device" --out "$work/reproduction" > "$work/reproduce.log" 2>&1
reproduce_status=$?

echo "== 4. the step check's cost" >&2
timeout 150 "$python" benchmarks/step_check.py --device "$device" --steps "${GPU_CHECK_STEPS:-100}" --rounds 2 \
    > "$work/step_check.md" 2> "$work/step_check.log"
step_check_status=$?

echo "== 5. the GPU record (benchmarks/gpu_speedrun.sh)" >&2
speedrun_stem=benchmarks/results/gpu_speedrun-$(date +%Y%m%d-%H%M)
[ "$device" = cpu ] && speedrun_stem="$work/gpu_speedrun"
GPU_SPEEDRUN_DEVICE="$device" GPU_SPEEDRUN_TIMEOUT=290 PYTHON="$python" timeout 300 \
    bash benchmarks/gpu_speedrun.sh --stem "$speedrun_stem" > "$work/speedrun.log" 2>&1
speedrun_status=$?

mkdir -p "$(dirname "$out")"
"$python" - "$work" "$out" "$tests_status" "$reproduce_status" "$device" "$step_check_status" \
    "$speedrun_status" "$speedrun_stem" <<'PY'
import json, subprocess, sys, time
from pathlib import Path

import torch

from digitlab.perf.machine import cpu_features, cpu_model

work, out, tests_status, reproduce_status, device = Path(sys.argv[1]), Path(sys.argv[2]), *map(int, sys.argv[3:5]), sys.argv[5]
step_check_status, speedrun_status, speedrun_md = int(sys.argv[6]), int(sys.argv[7]), Path(f"{sys.argv[8]}.md")
gpu = (f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}" if torch.cuda.is_available()
       else "none (a rehearsal on the CPU)")
lines = [
    "# CUDA check (benchmarks/gpu_check.sh)", "",
    f"- date: {time.strftime('%Y-%m-%d %H:%M')}; GPU: {gpu}; "
    f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}",
    f"- CPU: {cpu_model()}; features: {', '.join(k for k, v in cpu_features().items() if v) or 'none of note'}; "
    f"torch threads {torch.get_num_threads()}",
    "", "## 1. gpu-marked tests", "",
    f"exit {tests_status}: `{(work / 'tests.log').read_text().strip().splitlines()[-1]}`", "",
    *(["```", *(work / "tests.log").read_text().strip().splitlines()[-60:], "```", ""] if tests_status else []),
    "## 2. One epoch, batch 500 (train seconds; set-up timed apart)", "",
    "| model | device | precision | train s | set-up s | test acc % | ran as |", "|---|---|---|---:|---:|---:|---|",
]
for model in ("lstm", "blstm", "cnn"):
    for where in dict.fromkeys((device, "cpu")):
        for precision in ("fp32", "bf16"):
            run = work / f"epoch-{model}-{where}-{precision}"
            if not (run / "result.json").exists():
                error = (run.parent / f"{run.name}.log").read_text().strip().splitlines()[-1:]
                lines.append(f"| {model} | {where} | {precision} | failed | | | {' '.join(error)} |")
                continue
            row = json.loads((run / "result.json").read_text())["final"]
            ran = json.loads((run / "config.json").read_text())["precision"]
            lines.append(f"| {model} | {where} | {precision} | {row['train/seconds']:.2f} | "
                         f"{row.get('setup/seconds', float('nan')):.2f} | {100 * row['test/acc']:.2f} | {ran} |")
report = work / "reproduction" / "REPORT.md"
lines += ["", f"## 3. reproduce table4 --quick --device {device}", "", f"exit {reproduce_status}", ""]
if report.exists():
    text = report.read_text().splitlines()
    start = next((i for i, line in enumerate(text) if line.startswith("## Summary")), 0)
    lines += text[start:start + 8]
else:
    lines += ["```", *(work / "reproduce.log").read_text().strip().splitlines()[-5:], "```"]
lines += ["", f"## 4. The step check's cost (exit {step_check_status})", ""]
table = [line for line in (work / "step_check.md").read_text().splitlines() if line.startswith("|")]
lines += table or ["```", *(work / "step_check.log").read_text().strip().splitlines()[-5:], "```"]
kept = "a CPU rehearsal, not kept" if device == "cpu" else str(speedrun_md)
lines += ["", f"## 5. The GPU record (exit {speedrun_status}; benchmarks/gpu_speedrun.sh, its report: {kept})", ""]
speedrun = speedrun_md.read_text().splitlines() if speedrun_md.exists() else []
summary = speedrun[speedrun.index("## Summary") + 1:] if "## Summary" in speedrun else []
summary = summary[:next((i for i, line in enumerate(summary) if line.startswith("## ")), len(summary))]
summary = [line for line in summary if line.strip()]
lines += summary + ([""] if summary and speedrun_status else [])
if speedrun_status or not summary:  # the log's end says why
    lines += ["```", *(work / "speedrun.log").read_text().strip().splitlines()[-8:], "```"]
out.write_text("\n".join(lines) + "\n")
print(f"gpu_check: wrote {out}")
PY
