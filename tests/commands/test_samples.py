"""`digitlab samples add|list|remove DIR` end to end through digitlab.cli.main([...]): pictures prepared as
predict prepares them and stored with their label; bad pictures and bad folders get one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image, ImageDraw

from digitlab.inference.recognise import prepare
from digitlab.store.samples import open_samples
from helpers import assert_user_error, run_cli


def seven(path, size=120):
    image = Image.new("L", (size, size), 255)
    ImageDraw.Draw(image).line([(30, 25), (90, 25), (50, 100)], fill=0, width=10)
    image.save(path)
    return path


def test_add_list_and_remove(capsys, tmp_path):
    folder = tmp_path / "mine"
    a, b = seven(tmp_path / "a.png"), seven(tmp_path / "b.png", 200)
    code, out, err = run_cli(capsys, ["samples", "add", folder, "7", a, b])
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == f"{folder}: 2 added, 2 samples in all"
    images, labels, ids = open_samples(folder).load()
    assert labels.tolist() == [7, 7]
    assert np.array_equal(images[0], prepare(str(a))[1])  # the 28x28 image predict would show the model

    code, out, _ = run_cli(capsys, ["samples", "list", folder, "--json"])
    listed = json.loads(out)["samples"]
    assert code == 0 and [record["id"] for record in listed] == ids
    assert all(record["source"] in (str(a), str(b)) for record in listed)

    code, out, _ = run_cli(capsys, ["samples", "remove", folder, ids[0]])
    assert code == 0 and out == f"removed {ids[0]} (7)\n"
    code, out, _ = run_cli(capsys, ["samples", "list", folder])
    assert out.splitlines()[-1] == "1 samples: 7: 1"


def test_a_bad_picture_is_named_and_the_others_are_added(capsys, tmp_path):
    folder = tmp_path / "mine"
    (tmp_path / "notes.png").write_text("not an image")
    code, out, err = run_cli(
        capsys, ["samples", "add", folder, "not-a-digit", tmp_path / "notes.png", seven(tmp_path / "s.png")]
    )
    assert code == 2
    assert err.count("\n") == 1 and "notes.png" in err and "not an image" in err
    assert len(open_samples(folder).records()) == 1


def test_refusals(capsys, tmp_path):
    picture = seven(tmp_path / "a.png")
    assert_user_error(capsys, ["samples", "add", tmp_path / "mine", "12", picture], "unknown label", code=2)
    assert not (tmp_path / "mine").exists()
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "chapter1.txt").write_text("mine")
    assert_user_error(capsys, ["samples", "add", tmp_path / "thesis", "7", picture], "not a samples folder", code=2)
    assert sorted(p.name for p in (tmp_path / "thesis").iterdir()) == ["chapter1.txt"]
    assert_user_error(capsys, ["samples", "list", tmp_path / "nowhere"], "not a samples folder", code=2)
    run_cli(capsys, ["samples", "add", tmp_path / "mine", "7", picture])
    assert_user_error(capsys, ["samples", "remove", tmp_path / "mine", "../x"], "not a sample id", code=2)


def test_a_samples_folder_is_a_dataset_for_train_and_evaluate(capsys, tmp_path):
    folder = tmp_path / "mine"
    for index in range(6):
        code, _, _ = run_cli(capsys, ["samples", "add", folder, str(index % 2 * 7), seven(tmp_path / f"{index}.png")])
        assert code == 0
    run_cli(capsys, ["samples", "add", folder, "not-a-digit", seven(tmp_path / "x.png")])
    run = tmp_path / "run"
    argv = ["train", "--model", "mlp", "--epochs", 1, "--batch-size", 6, "--threads", 1, "--progress", "none"]
    code, out, err = run_cli(capsys, [*argv, "--data-dir", folder, "--run-dir", run])
    assert code == 0, err
    assert "its 6 digit samples are the training and test data" in out
    code, out, err = run_cli(capsys, ["evaluate", run, "--data-dir", folder, "--json"])
    assert code == 0, err
    assert json.loads(out)["images"] == 6 and "samples folder" in json.loads(out)["data"]["source"]
    (tmp_path / "empty").mkdir()
    run_cli(capsys, ["samples", "add", tmp_path / "empty", "not-a-digit", seven(tmp_path / "y.png")])
    assert_user_error(
        capsys, [*argv, "--data-dir", tmp_path / "empty", "--run-dir", tmp_path / "r2"], "no digit samples"
    )
