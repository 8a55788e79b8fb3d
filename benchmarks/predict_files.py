#!/usr/bin/env python
"""How many files per second `digitlab predict` answers, end to end from files to answers, this code against an
earlier checkout side by side, on two classes of pictures: scans and drawings up to 1 MP, and 12 MP phone JPEGs.

    git worktree add /tmp/predict-before COMMIT
    .venv/bin/python benchmarks/predict_files.py --before /tmp/predict-before [--scans 2000] [--phone 80]
                                                 [--rounds 3] [--data-dir DIR] [--out benchmarks/results]

The pictures are benchmarks/predict_pictures.py's (fixed seeds, MNIST test digits), written to a temporary
folder once. Each run is the real command in a subprocess, `python -m digitlab predict FOLDER --json`, with
PYTHONPATH naming the code's src folder (this checkout's, or --before's): its wall seconds from start to exit,
the interpreter's start and PyTorch's import included. Per round and class the two codes alternate (which goes
first alternates too), so that a busy spell hits both; the median round gives files/s (files over wall
seconds). Each code's start alone is timed too (the same command on one file), so that the report also gives
files/s beyond it (files over the wall seconds less the start), what a longer folder tends to.

Answers are compared file by file: label, verdict ("not a digit" and its reason) and error must be the same;
the largest difference of the top probability is reported. /proc/pressure/cpu is read around every run.

Writes benchmarks/results/predict_files.md and .json; the Markdown also goes to stdout, progress to stderr.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import common
import predict_pictures
from digitlab.perf import benchmark_report
from digitlab.perf.benchmark_report import Column, log
from digitlab.perf.machine import cpu_pressure
from digitlab.perf.timer import Timer

TARGETS = {"scans": {"ratio": 4.0, "files_per_s": 500.0}, "phone": {"files_per_s": 40.0}}  # issue 21
DESCRIBED = {
    "scans": "scans and drawings up to 1 MP: 60-1000 px canvases, PNG drawings (light on dark, dark on light), "
    "JPEG scans, JPEG phone photos of paper (data/photo.py); one in ten a line of two digits",
    "phone": "12 MP phone photos: 4000x3000 JPEGs at quality 90 of a digit 600-1800 px tall on paper, one in "
    "four stored on its side with an EXIF orientation",
}


def predict(src: Path, inputs: list[str]) -> tuple[dict, list[dict]]:
    """One `digitlab predict INPUTS --json` run of the code in `src`: (its timing, its answers)."""
    env = os.environ | {"PYTHONPATH": str(src)}
    before = cpu_pressure()
    with Timer() as timer:
        done = subprocess.run(
            [sys.executable, "-m", "digitlab", "predict", *inputs, "--json"], env=env, capture_output=True, text=True
        )
    if done.returncode not in (0, 2):  # 2: some file was refused, as some pictures here are
        raise RuntimeError(f"digitlab predict ({src}) exited with {done.returncode}:\n{done.stderr[-2000:]}")
    timing = {"seconds": timer.seconds, "stall_share": timer.stall_share}
    return timing | {"pressure_before": before, "pressure_after": cpu_pressure()}, json.loads(done.stdout)[
        "predictions"
    ]


def agreement(before: list[dict], after: list[dict]) -> dict:
    """How far two runs' answers agree, file by file."""
    same_label = same_verdict = same_error = 0
    differing, largest = [], 0.0
    for old, new in zip(before, after, strict=True):
        if "error" in old or "error" in new:
            same = old.get("error") == new.get("error")
            same_error += same
            if not same:
                differing.append(old["file"])
            continue
        label = old["label"] == new["label"]
        verdict = (old["not_a_digit"], old["reason"]) == (new["not_a_digit"], new["reason"])
        same_label += label
        same_verdict += verdict
        if not (label and verdict):
            differing.append(old["file"])
        largest = max(largest, abs(old["probability"] - new["probability"]))
    errors = sum("error" in old for old in before)
    return {
        "files": len(before), "errors_before": errors, "same_error": same_error, "same_label": same_label,
        "same_verdict": same_verdict, "answered": len(before) - errors, "differing": differing,
        "max_probability_difference": largest, "identical": not differing,
    }  # fmt: skip


def measure(name: str, folder: Path, one: Path, codes: dict[str, Path], rounds: int) -> dict:
    """The rounds of one class: each code on the whole folder and on one file, alternating."""
    runs = {code: [] for code in codes}
    starts = {code: [] for code in codes}
    answers = {}
    for number in range(rounds):
        order = list(codes) if number % 2 == 0 else list(codes)[::-1]
        for code in order:
            timing, found = predict(codes[code], [str(folder)])
            if code in answers and found != answers[code]:
                raise RuntimeError(f"{code}'s answers on {name} changed between rounds")
            answers[code] = found
            runs[code].append(timing)
            starts[code].append(predict(codes[code], [str(one)])[0]["seconds"])
            log(f"{name} round {number + 1} {code}: {timing['seconds']:.2f} s, start {starts[code][-1]:.2f} s")
    files = len(next(iter(answers.values())))
    rows = []
    for code in codes:
        seconds = statistics.median(run["seconds"] for run in runs[code])
        start = statistics.median(starts[code])
        stalls = [run["stall_share"] for run in runs[code] if run["stall_share"] is not None]
        rows.append({
            "class": name, "code": code, "files": files, "rounds": rounds, "runs": runs[code],
            "median_s": seconds, "files_per_s": files / seconds, "start_s": start,
            "beyond_start_files_per_s": files / (seconds - start) if seconds > start else None,
            "max_stall_percent": 100 * max(stalls) if stalls else None,
        })  # fmt: skip
    before, after = rows
    after["ratio"] = after["files_per_s"] / before["files_per_s"]
    beyond = before["beyond_start_files_per_s"], after["beyond_start_files_per_s"]
    after["beyond_start_ratio"] = beyond[1] / beyond[0] if None not in beyond else None
    return {"rows": rows, "agreement": agreement(answers["before"], answers["after"])}


COLUMNS = [
    Column("class", lambda row: row["class"], "left"),
    Column("code", lambda row: row["code"], "left"),
    Column("files", lambda row: str(row["files"])),
    Column("median s", lambda row: f"{row['median_s']:.2f}"),
    Column("files/s", lambda row: f"{row['files_per_s']:.1f}"),
    Column("vs before", lambda row: f"{row['ratio']:.2f}x" if "ratio" in row else "1.00x"),
    Column("start s", lambda row: f"{row['start_s']:.2f}"),
    Column("files/s beyond start", lambda row: benchmark_report.number(row["beyond_start_files_per_s"], 1)),
    Column("vs before ", lambda row: _times(row.get("beyond_start_ratio", 1.0))),
    Column("max CPU stall %", lambda row: benchmark_report.number(row["max_stall_percent"], 0)),
]


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def target_lines(classes: dict) -> list[str]:
    lines = []
    for name, found in classes.items():
        after, target = found["rows"][1], TARGETS[name]
        wanted = [f">= {target['files_per_s']:.0f} files/s"] + (
            [f">= {target['ratio']:.0f}x"] if "ratio" in target else []
        )
        met = after["files_per_s"] >= target["files_per_s"] and after.get("ratio", 0) >= target.get("ratio", 0)
        speed, ratio = after["beyond_start_files_per_s"] or 0.0, after["beyond_start_ratio"] or 0.0
        beyond = speed >= target["files_per_s"] and ratio >= target.get("ratio", 0)
        lines.append(
            f"- target for {name} ({' and '.join(wanted)}): end to end {'met' if met else 'NOT met'} "
            f"({after['files_per_s']:.1f} files/s, {after['ratio']:.2f}x); beyond the start "
            f"{'met' if beyond else 'NOT met'} ({benchmark_report.number(after['beyond_start_files_per_s'], 1)} "
            f"files/s, {_times(after['beyond_start_ratio'])})"
        )
    return lines


def agreement_lines(classes: dict) -> list[str]:
    lines = []
    for name, found in classes.items():
        agree = found["agreement"]
        lines.append(
            f"- answers, {name}: {agree['same_label']}/{agree['answered']} same label, {agree['same_verdict']}/"
            f"{agree['answered']} same verdict, {agree['same_error']}/{agree['errors_before']} refused files refused "
            f"alike; largest top-probability difference {agree['max_probability_difference']:.2g}"
            + (
                f"; DIFFERING: {', '.join(Path(file).name for file in agree['differing'])}"
                if agree["differing"]
                else ""
            )
        )
    return lines


def markdown(result: dict) -> str:
    setup, classes = result["setup"], result["classes"]
    rows = [row for found in classes.values() for row in found["rows"]]
    lines = [
        "# `digitlab predict` on folders of files: before and after, end to end",
        "",
        *common.header_lines(result),
        f"- before: {setup['before']} (commit {setup['before_commit']}); after: {setup['after']} (commit "
        f"{setup['after_commit']}{', with uncommitted changes' if setup['after_dirty'] else ''})",
        *[f"- {name}: {setup['files'][name]} files, {DESCRIBED[name]}" for name in classes],
        f"- each run: `python -m digitlab predict FOLDER --json` in a subprocess, {setup['rounds']} rounds, the "
        f"two codes alternating; start: the same command on one file",
        f"- command: `{result['command']}`",
        "",
        *benchmark_report.markdown_table(rows, COLUMNS),
        "",
        *target_lines(classes),
        *agreement_lines(classes),
        "- files/s: files over the median round's wall seconds, the interpreter's start, PyTorch's import and the "
        "model's loading included; beyond start: files over (wall seconds less the median start), what a longer "
        "folder tends to; max CPU stall %: the largest share of a run in which some task waited for a CPU "
        "(/proc/pressure/cpu)",
        *[
            f"- {row['class']} {row['code']}: pressure before the first run `{row['runs'][0]['pressure_before']}`, "
            f"after the last `{row['runs'][-1]['pressure_after']}`"
            for row in rows
        ],
    ]
    return "\n".join(lines) + "\n"


def commit_of(src: Path) -> tuple[str, bool]:
    """The commit a src folder's checkout is at, and whether it has uncommitted changes."""
    head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "src"], capture_output=True, text=True)
    return head.stdout.strip() or "unknown", bool(dirty.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--before", required=True, help="a checkout (git worktree) of the code to compare with")
    parser.add_argument("--scans", type=common.count, default=2000, help="scans and drawings up to 1 MP")
    parser.add_argument("--phone", type=common.count, default=80, help="12 MP phone JPEGs")
    parser.add_argument("--rounds", type=common.positive, default=3, help="timed rounds per class and code")
    common.add_out(parser)
    common.add_data_dir(parser)
    args = parser.parse_args(argv)
    before = Path(args.before).resolve() / "src"
    if not (before / "digitlab").is_dir():
        parser.error(f"{args.before} holds no src/digitlab; pass a checkout of digitlab (git worktree add DIR COMMIT)")
    codes = {"before": before, "after": common.REPO / "src"}
    counts = {name: count for name, count in (("scans", args.scans), ("phone", args.phone)) if count}
    if not counts:
        parser.error("nothing to time: --scans and --phone are both 0")

    images = common.load_data(args.data_dir).test_images.numpy()
    info = benchmark_report.machine()
    classes = {}
    with tempfile.TemporaryDirectory(prefix="digitlab-predict-files-") as folder:
        for name, count in counts.items():
            log(f"writing {count} {name} pictures")
            paths = predict_pictures.write_class(name, Path(folder) / name, images, count)
            classes[name] = measure(name, Path(folder) / name, paths[0], codes, args.rounds)
    (before_commit, _), (after_commit, dirty) = commit_of(codes["before"]), commit_of(codes["after"])
    setup = {
        "before": str(codes["before"].parent), "before_commit": before_commit, "after": str(common.REPO),
        "after_commit": after_commit, "after_dirty": dirty, "files": counts, "rounds": args.rounds,
    }  # fmt: skip
    result = common.results(info, setup=setup, classes=classes, targets=TARGETS)
    common.save_report(Path(args.out) / "predict_files", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
