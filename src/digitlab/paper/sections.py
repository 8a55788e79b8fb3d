"""The report's sections: each paper table and Figure 3 as Markdown beside the paper's numbers, the
claims tested on our numbers, and the summary table; each built from `report.collect`'s records."""

from __future__ import annotations

from pathlib import Path

from digitlab.paper import plots
from digitlab.paper.contention import MARK, epoch_contended, marked
from digitlab.paper.grid import FIGURE3_BATCH, FIGURE3_EPOCHS, FIGURE3_OPTIMIZERS, LR_GRID, PAPER_TABLES
from digitlab.paper.stats import paired, summarize


def row_label(config: dict) -> str:
    return f"blstm-{config['blstm_head']}" if config["model"] == "blstm" else config["model"]


def table_series(records: list[dict], batch_size: int, epochs: int) -> dict[str, dict]:
    """Row label -> per-seed lists of per-epoch accuracy, seconds and contention, finished table cells only."""
    series: dict[str, dict] = {}
    for record in records:
        config = record["config"]
        if (
            record["role"] != "table"
            or not record["finished"]
            or config["batch_size"] != batch_size
            or config["epochs"] != epochs
        ):
            continue
        entry = series.setdefault(row_label(config), {"acc": [], "seconds": [], "seeds": [], "contended": []})
        entry["acc"].append([row["test/acc"] for row in record["epochs"]])
        entry["seconds"].append([row["train/seconds"] for row in record["epochs"]])
        entry["contended"].append([epoch_contended(row) for row in record["epochs"]])
        entry["seeds"].append(config["seed"])
    order = ["lstm", "blstm-paper", "blstm-final"]  # the paper's two rows, then the sound head
    return {label: series[label] for label in sorted(series, key=lambda label: (order + [label]).index(label))}


def table_section(name: str, records: list[dict], paper: dict, figures: Path) -> tuple[list[str], dict]:
    batch_size, epochs = PAPER_TABLES[name]
    reference = paper["tables"][name]
    series = table_series(records, batch_size, epochs)
    lines = [f"## {name.replace('table', 'Table ')}: batch size {batch_size}, {epochs} epochs, Adam lr 0.001", ""]
    if not series:
        return lines + ["No finished cells yet.", ""], {}
    seeds = max(len(s["acc"]) for s in series.values())
    lines += [
        f"Ours: mean ± sd [95% CI] over {seeds} seed{'s' if seeds > 1 else ''}; paper: one run.",
        "",
        "| epoch | "
        + " | ".join(f"{label} s (ours)" for label in series)
        + " | LSTM s (paper) | BLSTM s (paper) | "
        + " | ".join(f"{label} acc % (ours)" for label in series)
        + " | LSTM acc % (paper) | BLSTM acc % (paper) |",
        "|---" * (2 * len(series) + 5) + "|",
    ]
    summary = {"rows": {}}
    for epoch in range(epochs):
        cells = [str(epoch + 1)]
        cells += [
            marked(
                summarize([run[epoch] for run in s["seconds"]]).format(digits=1), any(c[epoch] for c in s["contended"])
            )
            for s in series.values()
        ]
        cells += [str(reference["train_seconds"][m][epoch]) for m in ("lstm", "blstm")]
        cells += [summarize([run[epoch] for run in s["acc"]]).format(scale=100) for s in series.values()]
        cells += [f"{reference['test_accuracy_percent'][m][epoch]:.2f}" for m in ("lstm", "blstm")]
        lines.append("| " + " | ".join(cells) + " |")
    for label, s in series.items():
        summary["rows"][label] = {
            "seeds": s["seeds"],
            "final_acc": summarize([run[-1] for run in s["acc"]]).__dict__,
            "mean_epoch_seconds": summarize([sum(r) / len(r) for r in s["seconds"]]).__dict__,
        }
    lines += [""] + claims(series, summary) + [""]
    figure = figures / f"{name}.png"
    plots.table_figure(
        figure,
        f"{name.replace('table', 'Table ')} (batch {batch_size}, {epochs} epochs): ours vs Su (2018)",
        series,
        {
            m: {"acc": reference["test_accuracy_percent"][m], "seconds": reference["train_seconds"][m]}
            for m in ("lstm", "blstm")
        },
    )
    lines += [f"![{name}](figures/{figure.name})", ""]
    return lines, summary


def claims(series: dict, summary: dict) -> list[str]:
    lines = ["Claims of the paper, on our numbers:"]
    lstm = series.get("lstm")
    for label in ("blstm-paper", "blstm-final"):
        other = series.get(label)
        if lstm is None or other is None:
            continue
        # Both claims pair runs by seed: same data order and initial-weight seed.
        lstm_seconds, other_seconds = (
            dict(zip(lstm["seeds"], lstm["seconds"])),
            dict(zip(other["seeds"], other["seconds"])),
        )
        lstm_final = dict(zip(lstm["seeds"], (run[-1] for run in lstm["acc"])))
        other_final = dict(zip(other["seeds"], (run[-1] for run in other["acc"])))
        seeds = sorted(set(lstm_final) & set(other_final))
        ratio = summarize([sum(other_seconds[seed]) / sum(lstm_seconds[seed]) for seed in seeds])
        holds = "holds" if 2.5 <= ratio.mean <= 3.5 else "does not hold"
        suspect = any(map(any, lstm["contended"] + other["contended"]))
        lines.append(
            f"- (1) {label} takes about three times as long as LSTM per epoch: ratio "
            f"{ratio.format(digits=2)}, so the claim {holds} here"
            f"{f' (from timings under contention, {MARK})' if suspect else ''}."
        )
        test = paired([lstm_final[seed] for seed in seeds], [other_final[seed] for seed in seeds])
        difference = test.difference
        if difference.n < 2:
            verdict = "one seed only: no interval, so no conclusion"
        elif test.significant:
            verdict = (
                "LSTM significantly more accurate"
                if difference.mean > 0
                else f"{label} significantly more accurate: the claim does not hold"
            )
        else:
            verdict = "not significant (the interval covers zero)"
        lines.append(
            f"- (2) LSTM at least as accurate as {label} after the last epoch: LSTM - {label} = "
            f"{difference.format(scale=100)} points (paired over {difference.n} seed{'s' if difference.n != 1 else ''}"
            f"{'' if test.p_value != test.p_value else f', p = {test.p_value:.3f}'}): {verdict}."
        )
        summary.setdefault("claims", {})[label] = {
            "time_ratio": ratio.__dict__,
            "acc_difference": difference.__dict__,
            "p_value": test.p_value,
            "significant": test.significant,
        }
    return lines


def figure3_section(records: list[dict], figures: Path) -> tuple[list[str], dict]:
    lines = [
        f"## Figure 3: LSTM, four optimizers, {FIGURE3_EPOCHS} epochs, batch {FIGURE3_BATCH}",
        "",
        "All four start from the same initial weights and see the same batches in the same order "
        "(checked below from the run records). The paper gives no batch size for Figure 3; Table 2's 1000 is used.",
        "",
    ]
    panels, summary = [], {}
    for role, title in (("fixed", "lr 0.001 (the paper)"), ("tuned", "each at its best lr")):
        series = {}
        for name in FIGURE3_OPTIMIZERS:
            chosen = [r for r in records if r["role"] == role and r["finished"] and r["config"]["optimizer"] == name]
            if not chosen:
                continue
            label = name if role == "fixed" else f"{name} (lr {chosen[0]['config']['lr']:g})"
            series[label] = {
                "loss": [r["step_losses"] for r in chosen],
                "acc": [[row["test/acc"] for row in r["epochs"]] for r in chosen],
            }
            final_loss = summarize([sum(r["step_losses"][-20:]) / len(r["step_losses"][-20:]) for r in chosen])
            summary.setdefault(role, {})[name] = {
                "lr": chosen[0]["config"]["lr"],
                "final_loss": final_loss.__dict__,
                "final_acc": summarize([s[-1] for s in series[label]["acc"]]).__dict__,
                "initial_weights": sorted({r["result"]["initial_weights_sha256"] for r in chosen}),
            }
        if series:
            panels.append((title, series))
    if not panels:
        return lines + ["No finished cells yet.", ""], summary
    lines += [
        "| optimizer | lr | final loss (mean of last 20 steps) | final test acc % "
        "| lr (tuned) | final loss (tuned) | final test acc % (tuned) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in FIGURE3_OPTIMIZERS:
        fixed, tuned = summary.get("fixed", {}).get(name), summary.get("tuned", {}).get(name)
        cells = [name]
        for part in (fixed, tuned):
            if part is None:
                cells += ["-", "-", "-"]
            else:
                cells += [
                    f"{part['lr']:g}",
                    f"{part['final_loss']['mean']:.4f}",
                    f"{100 * part['final_acc']['mean']:.2f}",
                ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + ordering(summary) + [""]
    figure = figures / "figure3.png"
    plots.optimizer_figure(figure, "Figure 3: LSTM training loss and test accuracy for four optimizers", panels)
    lines += [
        "![figure3](figures/figure3.png)",
        "",
        f"The tuned panel's learning rates were chosen per optimizer from {', '.join(f'{lr:g}' for lr in LR_GRID)} "
        f"by the final validation accuracy on 10,000 examples held out of the training set (first seed only); "
        f"the test set chose nothing.",
        "",
    ]
    return lines, summary


def ordering(summary: dict) -> list[str]:
    lines = []
    fixed = summary.get("fixed", {})
    if len(fixed) == len(FIGURE3_OPTIMIZERS):
        ranked = sorted(fixed, key=lambda name: fixed[name]["final_loss"]["mean"])
        paper_holds = ranked[:2] == ["adam", "rmsprop"] and set(ranked[2:]) == {"sgd", "momentum"}
        lines.append(
            f"- At lr 0.001, lowest final loss first: {' < '.join(ranked)}. The paper's ordering (Adam best, "
            f"RMSprop next, SGD and Momentum worst) {'holds' if paper_holds else 'does not hold'}."
        )
        hashes = {h for part in fixed.values() for h in part["initial_weights"]}
        seeds = max(len(part["initial_weights"]) for part in fixed.values())
        lines.append(
            f"- Same initial weights across the four optimizers: "
            f"{'yes' if len(hashes) == seeds else 'NO'} ({len(hashes)} distinct weight hashes for {seeds} seed(s))."
        )
    tuned = summary.get("tuned", {})
    if len(tuned) == len(FIGURE3_OPTIMIZERS):
        ranked = sorted(tuned, key=lambda name: tuned[name]["final_loss"]["mean"])
        lines.append(
            f"- Each at its own best lr, lowest final loss first: {' < '.join(ranked)}: the ranking at a "
            f"single lr is partly a statement about that lr."
        )
    return lines


def key_table(records: list[dict], paper: dict) -> list[str]:
    """Final-epoch accuracy and mean seconds per epoch, ours beside the paper's, for every table row."""
    lines = [
        "## Summary: last epoch of each table",
        "",
        "| table | row | seeds | test acc % (ours, mean [95% CI]) | test acc % (paper) "
        "| s/epoch (ours) | s/epoch (paper) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (batch_size, epochs) in PAPER_TABLES.items():
        reference = paper["tables"][name]
        for label, series in table_series(records, batch_size, epochs).items():
            model = label.split("-")[0]
            accuracy = summarize([run[-1] for run in series["acc"]])
            seconds = summarize([sum(run) / len(run) for run in series["seconds"]])
            interval = f" [{100 * accuracy.low:.2f}, {100 * accuracy.high:.2f}]" if accuracy.n > 1 else ""
            paper_acc = reference["test_accuracy_percent"][model][-1] if label != "blstm-final" else None
            paper_seconds = reference["train_seconds"][model]
            lines.append(
                f"| {name} | {label} | {accuracy.n} | {100 * accuracy.mean:.2f}{interval} | "
                f"{'-' if paper_acc is None else f'{paper_acc:.2f}'} | "
                f"{marked(f'{seconds.mean:.1f}', any(map(any, series['contended'])))} | "
                f"{'-' if label == 'blstm-final' else f'{sum(paper_seconds) / len(paper_seconds):.0f}'} |"
            )
    return lines + ["", "The paper has no `blstm-final` row: it is the sound head, added to test claim (2).", ""]
