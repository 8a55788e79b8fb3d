"""The evaluation a careful reader trusts (digitlab.inference.assessment): the accuracy's confidence interval
against published values, per-class precision and recall, the figures, and `digitlab evaluate` end to end."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from digitlab.cli import main
from digitlab.errors import RunError
from digitlab.inference import assessment
from digitlab.inference.assessment import accuracy_interval, assess, confusion_figure, misclassified_grid, per_class
from permissions import file_modes_enforced

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- the confidence interval -----------------------------------------------------------------------------


def test_wilson_interval_matches_the_published_example():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", example 81/263: 0.2553-0.3662.
    low, high = accuracy_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_wilson_interval_agrees_with_its_closed_form():
    # Wilson (1927): centre (p + z^2/2n) / (1 + z^2/n), half-width z/(1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2).
    z = 1.959963984540054  # the 97.5% normal quantile
    for correct, total in ((81, 263), (5, 20), (9871, 10000), (10, 10)):
        p = correct / total
        centre = (p + z * z / (2 * total)) / (1 + z * z / total)
        half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
        assert accuracy_interval(correct, total) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_clopper_pearson_interval_of_no_successes():
    # With 0 of n, the exact upper bound solves (1 - p)^n = alpha/2: 1 - 0.025^(1/10) = 0.3085 for n = 10.
    low, high = accuracy_interval(0, 10, method="clopper-pearson")
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-12)
    assert round(high, 4) == 0.3085


def test_clopper_pearson_is_wider_than_wilson_and_the_level_matters():
    # The published Clopper-Pearson interval for 81/263 (Newcombe 1998) is 0.2527-0.3676.
    exact = accuracy_interval(81, 263, method="clopper-pearson")
    assert (round(exact[0], 4), round(exact[1], 4)) == (0.2527, 0.3676)
    wilson = accuracy_interval(81, 263)
    assert exact[0] < wilson[0] and wilson[1] < exact[1]
    narrow = accuracy_interval(81, 263, confidence=0.90)
    assert wilson[0] < narrow[0] and narrow[1] < wilson[1]


def test_a_perfect_score_still_has_an_interval_below_one():
    low, high = accuracy_interval(100, 100)
    assert high == pytest.approx(1.0) and 0.95 < low < 0.97  # Wilson: 0.9630; never the zero-width 1.0-1.0


@pytest.mark.parametrize(
    "correct, total, confidence, method",
    [(5, 0, 0.95, "wilson"), (11, 10, 0.95, "wilson"), (-1, 10, 0.95, "wilson"), (5, 10, 1.0, "wilson"),
     (5, 10, 0.95, "wald")],
)  # fmt: skip
def test_interval_refuses_what_is_not_an_accuracy(correct, total, confidence, method):
    with pytest.raises(ValueError):
        accuracy_interval(correct, total, confidence, method)


# --- precision and recall ---------------------------------------------------------------------------------


def test_precision_and_recall_of_a_hand_made_matrix():
    matrix = [  # rows: true class, columns: predicted; class 2 is never predicted
        [8, 2, 0],
        [1, 4, 0],
        [3, 1, 0],
    ]
    rows = per_class(matrix, ["cat", "dog", "fox"])
    assert [row["name"] for row in rows] == ["cat", "dog", "fox"]
    assert [row["support"] for row in rows] == [10, 5, 4]
    assert [row["predicted"] for row in rows] == [12, 7, 0]
    assert rows[0]["precision"] == pytest.approx(8 / 12) and rows[0]["recall"] == pytest.approx(8 / 10)
    assert rows[1]["precision"] == pytest.approx(4 / 7) and rows[1]["recall"] == pytest.approx(4 / 5)
    assert rows[2]["precision"] is None  # never predicted: undefined, not 0
    assert rows[2]["recall"] == 0.0
    json.dumps(rows)  # None becomes null; nothing numpy is left


def test_a_class_without_test_images_has_no_recall():
    rows = per_class(np.array([[3, 0], [0, 0]]))
    assert rows[1]["recall"] is None and rows[1]["precision"] is None and rows[1]["name"] is None
    assert rows[0]["precision"] == 1.0 and rows[0]["recall"] == 1.0


# --- the figures ------------------------------------------------------------------------------------------


def test_confusion_figure_is_a_png_with_no_temporary_left(tmp_path):
    confusion_figure([[8, 2], [1, 4]], ["cat", "dog"], tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]


def test_misclassified_grid_draws_only_the_mistakes(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    truth = np.arange(30) % 10
    guesses = truth.copy()
    guesses[[3, 7, 21]] = (guesses[[3, 7, 21]] + 1) % 10
    assert misclassified_grid(images, truth, guesses, None, tmp_path / "grid.png") == 3
    assert (tmp_path / "grid.png").read_bytes().startswith(PNG_SIGNATURE)
    assert misclassified_grid(images, truth, guesses, None, tmp_path / "two.png", limit=2) == 2


def test_no_mistakes_no_grid(tmp_path):
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    labels = np.arange(5)
    assert misclassified_grid(images, labels, labels, None, tmp_path / "grid.png") == 0
    assert not (tmp_path / "grid.png").exists()


# --- assess: the files in the run directory ---------------------------------------------------------------


def small_case(errors: int):
    """20 tiny images of 4 classes, with the first `errors` predictions wrong."""
    labels = torch.arange(20) % 4
    predictions = labels.clone()
    predictions[:errors] = (predictions[:errors] + 1) % 4
    return torch.zeros(20, 8, 8, dtype=torch.uint8), labels, predictions


def test_assess_writes_the_figures_and_the_record(tmp_path):
    images, labels, predictions = small_case(errors=3)
    record = assess(tmp_path, images, labels, predictions, 0.5, 4, class_names=["a", "b", "c", "d"])
    folder = tmp_path / assessment.EVALUATION
    assert sorted(p.name for p in folder.iterdir()) == ["confusion.png", "evaluation.json", "misclassified.png"]
    assert json.loads((folder / "evaluation.json").read_text()) == record
    assert (record["images"], record["correct"], record["errors"], record["accuracy"]) == (20, 17, 3, 0.85)
    assert (record["interval"]["low"], record["interval"]["high"]) == pytest.approx(accuracy_interval(17, 20))
    assert record["files"]["misclassified"] == str(folder / "misclassified.png")
    assert sum(map(sum, record["confusion"])) == 20 and record["per_class"][0]["name"] == "a"


def test_assess_without_mistakes_writes_no_grid_and_removes_an_old_one(tmp_path):
    images, labels, predictions = small_case(errors=3)
    assess(tmp_path, images, labels, predictions, 0.5, 4)
    images, labels, predictions = small_case(errors=0)
    record = assess(tmp_path, images, labels, predictions, 0.1, 4)
    assert record["files"]["misclassified"] is None and record["misclassified_shown"] == 0
    assert sorted(p.name for p in (tmp_path / "evaluation").iterdir()) == ["confusion.png", "evaluation.json"]


def test_an_unwritable_run_directory_is_a_clear_error_and_leaves_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_dir.chmod(0o500)
    try:
        with file_modes_enforced(), pytest.raises(RunError, match="cannot write the evaluation into .*chmod u\\+w"):
            assess(run_dir, *small_case(errors=3), 0.5, 4)
        assert list(run_dir.iterdir()) == []
    finally:
        run_dir.chmod(0o700)


def test_a_write_failing_half_way_leaves_no_partial_evaluation(tmp_path, monkeypatch):
    # As a full disk would: the figures are written, then the record fails. No figure may stay without its record.
    def full_disk(path, value):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(assessment, "write_json", full_disk)
    with pytest.raises(RunError, match="No space left on device"):
        assess(tmp_path, *small_case(errors=3), 0.5, 4)
    assert list(tmp_path.iterdir()) == []


def test_an_evaluation_path_taken_by_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "evaluation").write_text("not a folder")
    with pytest.raises(RunError, match=f"cannot write the evaluation into {tmp_path / 'evaluation'}"):
        assess(tmp_path, *small_case(errors=3), 0.5, 4)
    assert (tmp_path / "evaluation").read_text() == "not a folder"


# --- `digitlab evaluate` ----------------------------------------------------------------------------------


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the session's finished run, which evaluate may write into."""
    return shutil.copytree(trained_run, tmp_path / "run")


def test_evaluate_prints_the_interval_the_table_and_the_files(capsys, run_copy, session_data_dir):
    assert main(["evaluate", str(run_copy), "--data-dir", str(session_data_dir)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "% CI " in out and "Wilson" in out and "(100 images)" in out
    assert "per-class accuracy (recall) and precision:" in out
    assert str(run_copy / "evaluation" / "evaluation.json") in out
    assert str(run_copy / "evaluation" / "confusion.png") in out
    assert (run_copy / "evaluation" / "confusion.png").read_bytes().startswith(PNG_SIGNATURE)


def test_evaluate_json_prints_one_parseable_document(capsys, run_copy, session_data_dir):
    assert main(["evaluate", str(run_copy), "--data-dir", str(session_data_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)  # the whole of stdout: one document, nothing else
    expected = {"accuracy", "interval", "loss", "images", "errors", "per_class", "confusion", "files", "data"}
    assert expected <= set(record)
    assert {"low", "high", "method", "confidence"} <= set(record["interval"])
    assert record["interval"]["low"] <= record["accuracy"] <= record["interval"]["high"]
    assert record["images"] == 100 and len(record["per_class"]) == 10
    assert {"class", "name", "precision", "recall", "support"} <= set(record["per_class"][0])
    assert "holds no dataset digitlab knows" in err  # the loading note went to stderr, not into the JSON
    assert json.loads((run_copy / "evaluation" / "evaluation.json").read_text()) == record
