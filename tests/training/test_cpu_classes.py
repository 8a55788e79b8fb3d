"""The precision-dependent tests again, as other CPU classes would run them: oneDNN (ONEDNN_MAX_CPU_ISA) and
ATen (ATEN_CPU_CAPABILITY) narrowed to an older instruction set in a fresh process (both are read when torch
loads). Narrowed to AVX2, an AVX-512 machine fails as an AVX2-only laptop does (oneDNN has no bf16 LSTM there);
on a machine that already is of the class, the narrowing changes nothing and the tests run as they are."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import REPO_ROOT

CPU_CLASSES = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},  # laptops, many cloud CPUs
    "avx512-without-bf16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},  # Intel Xeon before Cooper Lake
}
TESTS = ["tests/training/test_precisions.py", "tests/benchmarks/test_epoch_time.py"]


@pytest.mark.parametrize("cpu_class", sorted(CPU_CLASSES))
def test_precision_tests_pass_on_another_cpu_class(cpu_class, tmp_path):
    narrowed = CPU_CLASSES[cpu_class]
    probe = "from digitlab.perf.machine import cpu_kernels as k; print(k()['bf16_native'], k()['onednn_bf16_lstm'])"
    env = os.environ | narrowed
    seen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    bf16_native, bf16_lstm = seen.stdout.split()
    assert bf16_native == "False"  # neither class computes bf16 natively: --precision auto must pick fp32
    if cpu_class == "avx2":
        assert bf16_lstm == "False"  # the narrowing took: the defect of a laptop CPU is reproduced here
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path), *TESTS]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
