"""The report's sections (digitlab.paper.sections) on small hand-made records: the numbers and the verdicts."""

from __future__ import annotations

import pytest

from digitlab.paper.report import paper_tables
from digitlab.paper.sections import claims, key_table, ordering, table_section, table_series

PAPER = paper_tables()


def record(model: str, seed: int, final_acc: float, seconds: float, head: str = "paper", batch_size: int = 1000,
           epochs: int = 4, role: str = "table", finished: bool = True) -> dict:  # fmt: skip
    """A table cell as report.collect() reads it: accuracy rising to `final_acc`, `seconds` every epoch."""
    accuracies = [final_acc - 0.01 * (epochs - 1 - epoch) for epoch in range(epochs)]
    return {
        "cell": f"{role}-{model}-{head}-s{seed}",
        "role": role,
        "config": {
            "model": model,
            "blstm_head": head,
            "batch_size": batch_size,
            "epochs": epochs,
            "seed": seed,
            "optimizer": "adam",
            "lr": 0.001,
        },  # fmt: skip
        "finished": finished,
        "diverged": False,
        "epochs": [
            {"epoch": epoch + 1, "test/acc": acc, "train/seconds": seconds, "eval/seconds": 0.5}
            for epoch, acc in enumerate(accuracies)
        ],
    }


def records_for(lstm_acc: list[float], blstm_acc: list[float], lstm_seconds: float = 10.0,
                blstm_seconds: float = 30.0) -> list[dict]:  # fmt: skip
    """Table 2 cells: one LSTM and one paper-head BLSTM per seed (seeds 0, 1, ...)."""
    return [record("lstm", seed, acc, lstm_seconds) for seed, acc in enumerate(lstm_acc)] + [
        record("blstm", seed, acc, blstm_seconds) for seed, acc in enumerate(blstm_acc)
    ]


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def claim_lines(lines: list[str], number: int, label: str = "blstm-paper") -> list[str]:
    return [line for line in lines if line.startswith(f"- ({number}) ") and label in line]


# --- which cells make a table ------------------------------------------------------------------------------


def test_series_take_finished_cells_of_the_table_only():
    records = records_for([0.95], [0.94]) + [
        record("lstm", 1, 0.5, 10.0, finished=False),  # unfinished
        record("lstm", 2, 0.5, 10.0, batch_size=640, epochs=8),  # Table 3's
        record("lstm", 3, 0.5, 10.0, role="fixed"),  # Figure 3's
    ]
    series = table_series(records, 1000, 4)
    assert series["lstm"]["seeds"] == [0] and series["blstm-paper"]["seeds"] == [0]


def test_series_rows_come_in_the_papers_order():
    records = [record("blstm", 0, 0.9, 30.0, head="final"), record("blstm", 0, 0.9, 30.0), record("lstm", 0, 0.9, 9)]
    assert list(table_series(records, 1000, 4)) == ["lstm", "blstm-paper", "blstm-final"]


# --- a table section -------------------------------------------------------------------------------------


def test_table_without_finished_cells_says_so(tmp_path):
    lines, summary = table_section("table2", [record("lstm", 0, 0.9, 10.0, finished=False)], PAPER, tmp_path)
    assert "No finished cells yet." in lines
    assert summary == {}
    assert not list(tmp_path.iterdir())


def test_table_section_summarises_each_row(tmp_path):
    _, summary = table_section("table2", records_for([0.95, 0.96, 0.97], [0.94, 0.94, 0.94]), PAPER, tmp_path)
    lstm = summary["rows"]["lstm"]
    assert lstm["seeds"] == [0, 1, 2]
    assert lstm["final_acc"]["mean"] == pytest.approx(0.96)
    assert lstm["final_acc"]["std"] == pytest.approx(0.01)
    # t(0.975, 2) = 4.302653; half width = 4.302653 * 0.01 / sqrt(3) = 0.024841
    assert lstm["final_acc"]["low"] == pytest.approx(0.96 - 0.024841, abs=1e-6)
    assert lstm["mean_epoch_seconds"]["mean"] == pytest.approx(10.0)
    assert summary["rows"]["blstm-paper"]["mean_epoch_seconds"]["mean"] == pytest.approx(30.0)


def test_table_section_has_one_row_per_epoch_beside_the_papers_numbers(tmp_path):
    lines, _ = table_section("table2", records_for([0.95], [0.94]), PAPER, tmp_path)
    rows = [cells(line) for line in lines if line.startswith("| ") and cells(line)[0].isdigit()]
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]
    # epoch, our seconds (lstm, blstm-paper), the paper's seconds, our accuracy %, the paper's accuracy %
    assert rows[0] == ["1", "10.0", "30.0", "93", "268", "92.00", "91.00", "76.89", "80.22"]
    assert rows[3] == ["4", "10.0", "30.0", "87", "263", "95.00", "94.00", "95.81", "94.95"]


def test_table_section_draws_its_figure(tmp_path):
    lines, _ = table_section("table2", records_for([0.95], [0.94]), PAPER, tmp_path)
    assert (tmp_path / "table2.png").read_bytes().startswith(b"\x89PNG")
    assert "![table2](figures/table2.png)" in lines


# --- the claims ------------------------------------------------------------------------------------------


def verdicts(lstm_acc, blstm_acc, **seconds) -> tuple[list[str], dict]:
    summary = {}
    lines = claims(table_series(records_for(lstm_acc, blstm_acc, **seconds), 1000, 4), summary)
    return lines, summary


def test_claim_1_holds_when_the_blstm_takes_three_times_as_long():
    lines, summary = verdicts([0.95, 0.96], [0.95, 0.96], lstm_seconds=10.0, blstm_seconds=30.0)
    (line,) = claim_lines(lines, 1)
    assert "ratio 3.00" in line and "the claim holds here" in line
    assert summary["claims"]["blstm-paper"]["time_ratio"]["mean"] == pytest.approx(3.0)


def test_claim_1_does_not_hold_when_the_blstm_is_not_three_times_slower():
    lines, summary = verdicts([0.95, 0.96], [0.95, 0.96], lstm_seconds=10.0, blstm_seconds=15.0)
    (line,) = claim_lines(lines, 1)
    assert "ratio 1.50" in line and "the claim does not hold here" in line
    assert summary["claims"]["blstm-paper"]["time_ratio"]["mean"] == pytest.approx(1.5)


def test_claim_2_consistent_lstm_lead_is_significant():
    lines, summary = verdicts([0.95, 0.96, 0.97, 0.98], [0.90, 0.905, 0.92, 0.925])
    (line,) = claim_lines(lines, 2)
    assert "paired over 4 seeds" in line and line.endswith(": LSTM significantly more accurate.")
    claim = summary["claims"]["blstm-paper"]
    assert claim["significant"] is True
    assert claim["acc_difference"]["mean"] == pytest.approx(0.0525)


def test_claim_2_noisy_difference_is_not_significant():
    lines, summary = verdicts([0.90, 0.80, 0.70], [0.85, 0.80, 0.60])  # differences 0.05, 0, 0.10
    (line,) = claim_lines(lines, 2)
    assert "paired over 3 seeds, p = 0.225" in line and "not significant (the interval covers zero)" in line
    claim = summary["claims"]["blstm-paper"]
    assert claim["significant"] is False
    assert claim["p_value"] == pytest.approx(0.2254, abs=1e-3)
    assert claim["acc_difference"]["mean"] == pytest.approx(0.05)


def test_claim_2_fails_when_the_blstm_is_significantly_better():
    lines, summary = verdicts([0.90, 0.905, 0.92, 0.925], [0.95, 0.96, 0.97, 0.98])
    (line,) = claim_lines(lines, 2)
    assert "blstm-paper significantly more accurate: the claim does not hold" in line
    assert summary["claims"]["blstm-paper"]["acc_difference"]["mean"] == pytest.approx(-0.0525)


def test_claim_2_with_one_seed_draws_no_conclusion():
    lines, summary = verdicts([0.95], [0.90])
    (line,) = claim_lines(lines, 2)
    assert "paired over 1 seed)" in line and "one seed only: no interval, so no conclusion" in line
    assert summary["claims"]["blstm-paper"]["significant"] is False


def test_claim_2_pairs_accuracies_by_seed():
    records = [record("lstm", seed, acc, 10.0) for seed, acc in ((0, 0.90), (1, 0.80), (2, 0.70))]
    records += [record("blstm", seed, acc, 30.0) for seed, acc in ((1, 0.80), (2, 0.60), (3, 0.99))]
    summary = {}
    lines = claims(table_series(records, 1000, 4), summary)
    (line,) = claim_lines(lines, 2)
    assert "paired over 2 seeds" in line
    assert summary["claims"]["blstm-paper"]["acc_difference"]["mean"] == pytest.approx(0.05)  # (0 + 0.10) / 2


def test_no_claims_without_an_lstm_row():
    summary = {}
    lines = claims(table_series([record("blstm", 0, 0.9, 30.0)], 1000, 4), summary)
    assert not claim_lines(lines, 1) and not claim_lines(lines, 2)
    assert "claims" not in summary


def test_claims_are_made_for_each_blstm_head():
    records = records_for([0.95], [0.94]) + [record("blstm", 0, 0.93, 40.0, head="final")]
    lines = claims(table_series(records, 1000, 4), {})
    assert len(claim_lines(lines, 1, "blstm-final")) == 1 and len(claim_lines(lines, 2, "blstm-final")) == 1
    assert len(claim_lines(lines, 1, "blstm-paper")) == 1


# --- the summary table -----------------------------------------------------------------------------------


def key_rows(records: list[dict]) -> dict[tuple[str, str], list[str]]:
    rows = [cells(line) for line in key_table(records, PAPER) if line.startswith("| ")]
    rows = [row for row in rows if row[0] in PAPER["tables"]]  # the body, without the heading
    return {(row[0], row[1]): row[2:] for row in rows}


def test_key_table_gives_mean_and_interval_beside_the_paper():
    rows = key_rows(records_for([0.95, 0.96, 0.97], [0.94, 0.94, 0.94]))
    # seeds, our accuracy % (mean [95% CI]), the paper's, our s/epoch, the paper's mean s/epoch
    assert rows[("table2", "lstm")] == ["3", "96.00 [93.52, 98.48]", "95.81", "10.0", "89"]
    assert rows[("table2", "blstm-paper")] == ["3", "94.00 [94.00, 94.00]", "94.95", "30.0", "266"]


def test_key_table_has_no_interval_for_one_seed():
    rows = key_rows(records_for([0.95], [0.94]))
    assert rows[("table2", "lstm")] == ["1", "95.00", "95.81", "10.0", "89"]


def test_key_table_has_no_paper_numbers_for_the_final_head():
    rows = key_rows([record("blstm", 0, 0.97, 40.0, head="final")])
    assert rows[("table2", "blstm-final")] == ["1", "97.00", "-", "40.0", "-"]


def test_key_table_covers_every_table():
    records = [record("lstm", 0, 0.9, 10.0, batch_size=b, epochs=e) for b, e in ((1000, 4), (640, 8), (500, 12))]
    assert sorted(key_rows(records)) == [("table2", "lstm"), ("table3", "lstm"), ("table4", "lstm")]


# --- Figure 3's ordering ---------------------------------------------------------------------------------


def figure3_summary(losses: dict[str, float]) -> dict:
    return {
        "fixed": {name: {"final_loss": {"mean": loss}, "initial_weights": ["abc"]} for name, loss in losses.items()}
    }


def test_papers_optimizer_ordering_holds():
    lines = ordering(figure3_summary({"adam": 0.1, "rmsprop": 0.2, "momentum": 0.5, "sgd": 0.6}))
    assert "adam < rmsprop < momentum < sgd" in lines[0] and lines[0].endswith("holds.")
    assert "yes (1 distinct weight hashes for 1 seed(s))" in lines[1]


def test_papers_optimizer_ordering_does_not_hold():
    lines = ordering(figure3_summary({"adam": 0.3, "rmsprop": 0.2, "momentum": 0.5, "sgd": 0.6}))
    assert "rmsprop < adam" in lines[0] and lines[0].endswith("does not hold.")
