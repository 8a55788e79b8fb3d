#!/usr/bin/env bash
# The GPU record of issue 21 (part 3) in one call, with a total time limit (GPU_SPEEDRUN_TIMEOUT, default 290 s;
# expected to take 1-2 minutes on one H200, not yet measured): benchmarks/gpu_speedrun.py's stages, select on validation,
# record on test over 10 seeds, levers, the paper LSTM's epoch; writes benchmarks/results/gpu_speedrun-<date>.md
# and .json (each stage's results as soon as it ends, so a run cut off by the limit keeps those before).
#   bash benchmarks/gpu_speedrun.sh                            # on a CUDA machine
#   GPU_SPEEDRUN_DEVICE=cpu bash benchmarks/gpu_speedrun.sh    # a rehearsal on the CPU (--quick, seconds), written as
#                                                              # benchmarks/results/gpu_speedrun-cpu-rehearsal-<date>
# Further arguments go to the script (--stem PATH, --stages record,lstm, --lever-compile default, ...).
# Data: $DIGITLAB_DATA_DIR, else ../shared/data/mnist beside the repository, else digitlab's fetch chain.
# Exit: the script's; 124 when the time limit cut it off; 2 when torch sees no CUDA GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
device=${GPU_SPEEDRUN_DEVICE:-cuda}
if [ -z "${DIGITLAB_DATA_DIR:-}" ] && [ -d ../shared/data/mnist ]; then
    export DIGITLAB_DATA_DIR="$PWD/../shared/data/mnist"
fi
quick=()
[ "$device" = cpu ] && quick=(--quick)
timeout "${GPU_SPEEDRUN_TIMEOUT:-290}" "$python" benchmarks/gpu_speedrun.py --device "$device" "${quick[@]}" "$@"
status=$?
[ "$status" = 124 ] && echo "gpu_speedrun: cut off after ${GPU_SPEEDRUN_TIMEOUT:-290} s; the stages that ended are in the report" >&2
exit "$status"
