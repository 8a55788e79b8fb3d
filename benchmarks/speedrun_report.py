"""The Markdown report of benchmarks/gpu_speedrun.py's results: text(result, rehearsal), with a Summary section of
one line per target (benchmarks/gpu_check.sh quotes it)."""

from __future__ import annotations

import common
from digitlab.perf.benchmark_report import Column, markdown_table, number

RECORD_TARGET_S = 0.25  # issue 21: time to 99% test accuracy on one H200
LSTM_TARGET_S = 0.15  # issue 21: the paper LSTM's seconds per epoch at batch 500 on one H200


def percent(value: float) -> str:
    return f"{100 * value:.2f}"


def verdict(seconds: float, target: float, rehearsal: bool, reached: bool = True) -> str:
    if rehearsal:
        return "not judged: a CPU rehearsal"
    return "met" if reached and seconds <= target else "not met"


def summary(result: dict, rehearsal: bool) -> list[str]:
    lines = []
    if "record" in result:
        rec, runs = result["record"], result["record"]["runs"]
        every = rec["reached"] == len(runs)
        target = result["settings"]["target"]
        lines.append(
            f"- time to {percent(target)}% test accuracy: {rec['mean_seconds']:.3f} s of training, mean of "
            f"{len(runs)} seed(s); {rec['reached']} of {len(runs)} seeds reached it (mean test accuracy "
            f"{percent(rec['mean_test_acc'])}%); target <= {RECORD_TARGET_S} s on one H200 with every seed: "
            f"{verdict(rec['mean_seconds'], RECORD_TARGET_S, rehearsal, every)}"
        )
    for row in [row for row in result.get("lstm", []) if row["launch"] == result["settings"]["launch"]]:
        lines.append(
            f"- paper LSTM, batch 500, {row['precision']}, {row['launch']} (ran as {row['ran_as']}): "
            f"{row['seconds']:.3f} s per epoch; target <= {LSTM_TARGET_S} s: "
            f"{verdict(row['seconds'], LSTM_TARGET_S, rehearsal)}"
        )
    return lines


def text(result: dict, rehearsal: bool) -> str:
    """The report: heading, machine, settings, Summary, then each stage's table."""
    s = result["settings"]
    title = "# GPU speedrun (benchmarks/gpu_speedrun.py)"
    if rehearsal:
        title = "# CPU REHEARSAL of benchmarks/gpu_speedrun.py: it did not run on a GPU, its numbers mean nothing"
    m = result["machine"]
    lines = [title, "", f"- command: `{result['command']}`", *common.header_lines(result),
             f"- device: {m['device']}; capability {m['capability']}; CUDA {m['cuda']}; cuDNN {m['cudnn']}; "
             f"TF32 matmul {m['tf32_matmul']}, cuDNN {m['tf32_cudnn']}; cudnn.benchmark {m['cudnn_benchmark']}",
             f"- SpeedNet: {s['speednet_parameters']} parameters; precision {s['precision']}, channels-last "
             f"{s['channels_last']}, launch {s['launch']}, Adam (fused, betas 0.9/0.99) with a one-cycle lr, "
             f"label smoothing {s['smoothing']}; data resident on the device, batches by index, last partial "
             f"batch of each epoch dropped",
             "- clock: the shuffle and the steps, read after synchronising; set-up (build, warm-up, capture or "
             "compile) and evaluation (in fp32) apart",
             "", "## Summary", "", *summary(result, rehearsal), ""]  # fmt: skip
    if "select" in result:
        sel = result["select"]
        chosen = sel["chosen"]
        lines += [f"## Selection on validation ({s['val_size']} training examples held out, seeds 0-"
                  f"{s['select_seeds'] - 1})", "",
                  f"Chosen: batch {chosen['batch_size']}, {chosen['epochs']} epochs, peak lr {chosen['lr']} "
                  + ("(the fastest whose every seed reached the target)" if sel["reached"] else
                     "(NO grid point reached the target on every seed: the most accurate)"), ""]  # fmt: skip
        lines += markdown_table(sel["rows"], [
            Column("batch", lambda r: str(r["batch_size"])), Column("epochs", lambda r: str(r["epochs"])),
            Column("peak lr", lambda r: str(r["lr"])), Column("steps", lambda r: str(r["steps"])),
            Column("train s (mean)", lambda r: number(r["seconds"], 3)),
            Column("val acc % (each seed)", lambda r: " ".join(percent(x["val_acc"]) for x in r["runs"])),
            Column("min val acc %", lambda r: percent(r["min_val_acc"])),
            Column("chosen", lambda r: "yes" if r.get("chosen") else "", "left"),
            Column("set-up s", lambda r: number(r["setup_s"])), Column("ran as", lambda r: r["ran_as"], "left"),
        ]) + [""]  # fmt: skip
    if "record" in result:
        rec = result["record"]
        lines += [
            f"## Record: trained on {rec['examples'][0]} training examples, scored on {rec['examples'][1]} "
            f"test examples (steps {rec['steps']}, "
            f"set-up {rec['setup_s']:.2f} s, ran as {rec['ran_as']}; settings "
            f"{'given on the command line' if rec['settings']['given'] else 'chosen on validation'})",
            "",
        ]
        lines += markdown_table(rec["runs"], [
            Column("seed", lambda r: str(r["seed"])), Column("train s", lambda r: number(r["seconds"], 3)),
            Column("test acc %", lambda r: percent(r["test_acc"])),
            Column(f"reached {percent(s['target'])}%", lambda r: "yes" if r["reached"] else "no", "left"),
            Column("eval s", lambda r: number(r["eval_s"], 3)),
        ]) + [""]  # fmt: skip
    if "levers" in result:
        lines += ["## Levers: the record's settings, seed 1000, each lever taken away", ""]
        lines += markdown_table(result["levers"], [
            Column("variant", lambda r: r["lever"], "left"), Column("ran as", lambda r: r["ran_as"], "left"),
            Column("set-up s", lambda r: number(r["setup_s"])),
            Column("train s", lambda r: number(r["mean_seconds"], 3)),
            Column("test acc %", lambda r: percent(r["mean_test_acc"])),
        ]) + [""]  # fmt: skip
    if "lstm" in result:
        lines += [
            f"## Paper LSTM (digitlab's lstm: 2 layers of 128), batch 500, Adam lr 0.001, "
            f"{result['lstm'][0]['examples']} training examples",
            "",
        ]
        lines += markdown_table(result["lstm"], [
            Column("precision", lambda r: r["precision"], "left"), Column("launch", lambda r: r["launch"], "left"),
            Column("ran as", lambda r: r["ran_as"], "left"), Column("set-up s", lambda r: number(r["setup_s"])),
            Column("s per epoch (median)", lambda r: number(r["seconds"], 3)),
            Column("each epoch s", lambda r: " ".join(f"{x:.3f}" for x in r["epoch_seconds"]), "left"),
            Column("test acc % after", lambda r: percent(r["test_acc"])),
        ]) + [""]  # fmt: skip
    return "\n".join(lines)
