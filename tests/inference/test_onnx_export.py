"""ONNX export (digitlab.inference.export) and running the file (digitlab.inference.classifier.OnnxClassifier).

Every model of the registry (the BLSTM with each head) is trained tiny on the synthetic data, exported, and
must compute in onnxruntime what it computes in PyTorch, at any batch size; files that are not our ONNX
models are refused with one line; a failed verification leaves nothing behind.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import warnings

import numpy as np
import onnx
import pytest
import torch

import digitlab.inference.classifier
import digitlab.inference.export
import digitlab.inference.onnx_model
from digitlab.cli import main
from digitlab.config import TrainConfig
from digitlab.data.dataset import load, normalize
from digitlab.errors import CheckpointError, DataError
from digitlab.inference.calibration import calibrate_run, read_calibration
from digitlab.inference.classifier import OnnxClassifier, TorchClassifier, probabilities
from digitlab.inference.export import TOLERANCE, VERIFY_BATCHES, ExportError, export_onnx
from digitlab.inference.load import load_model
from digitlab.inference.onnx_model import FORMAT_KEY, OPSET
from digitlab.models import BLSTM_HEADS, MODELS
from digitlab.training.fit import fit


def cases() -> list[tuple[str, str]]:
    """(model, head) for every model in MODELS; a model with a head option once per head."""
    found = []
    for name, cls in MODELS.items():
        heads = BLSTM_HEADS if "head" in inspect.signature(cls).parameters else ("paper",)
        found += [(name, head) for head in heads]
    return found


CASES = cases()


def train_tiny(folder, data_dir, name: str, head: str = "paper", **settings):
    """A finished run of a small `name` model after one epoch on the synthetic data."""
    has_channels = "channels" in inspect.signature(MODELS[name]).parameters
    config = TrainConfig(
        model=name,
        blstm_head=head,
        hidden_size=16,
        num_layers=2,  # stacked: the recurrent models' (and the BLSTM paper head's) layer-below path too
        channels=4 if has_channels else None,
        batch_size=50,
        epochs=1,
        data_dir=str(data_dir),
        run_dir=str(folder / "run"),
        threads=1,
        progress="none",
        device="cpu",
        **settings,
    )
    return fit(config, log=lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def test_images(session_data_dir) -> np.ndarray:
    return load(session_data_dir, log=lambda *a: None).test_images[:16].numpy()


@pytest.fixture(scope="module", params=CASES, ids=[f"{name}-{head}" for name, head in CASES])
def exported(request, tmp_path_factory, session_data_dir):
    """(run directory, export result) of one model of the registry, trained tiny and exported."""
    name, head = request.param
    run = train_tiny(tmp_path_factory.mktemp(f"{name}-{head}"), session_data_dir, name, head)
    return run, export_onnx(run)


@pytest.fixture(scope="module")
def lstm_onnx(trained_run, tmp_path_factory):
    """The session's tiny LSTM run (conftest's trained_run), exported once outside the run directory."""
    path = tmp_path_factory.mktemp("lstm-onnx") / "lstm.onnx"
    export_onnx(trained_run, path)
    return path


def torch_logits(run, images: np.ndarray) -> np.ndarray:
    model, _ = load_model(run)
    with torch.inference_mode():
        return model(normalize(torch.from_numpy(images))).numpy()


def test_the_cases_cover_the_registry():
    assert {name for name, _ in CASES} == set(MODELS)
    assert {head for name, head in CASES if name == "blstm"} == set(BLSTM_HEADS)


def test_export_is_verified_against_pytorch(exported):
    run, result = exported
    assert result["path"] == str(run / "model.onnx") and (run / "model.onnx").stat().st_size == result["bytes"]
    assert result["opset"] == OPSET and result["batch_sizes"] == list(VERIFY_BATCHES)
    assert result["max_difference"] <= TOLERANCE == 1e-5
    assert result["images"].startswith("64 test images of ")  # the run's own test data, found from its config
    assert not list(run.glob(".*.tmp"))


def test_onnxruntime_matches_pytorch_at_any_batch_size(exported, test_images):
    import onnxruntime

    run, _ = exported
    session = onnxruntime.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    for size in (1, 7):
        batch = test_images[:size]
        (got,) = session.run(["logits"], {"images": batch.astype(np.float32)})
        assert got.shape == (size, 10)
        np.testing.assert_allclose(got, torch_logits(run, batch), rtol=0, atol=1e-5)
    graph = onnx.load(run / "model.onnx").graph
    for value in (graph.input[0], graph.output[0]):
        batch_dim = value.type.tensor_type.shape.dim[0]
        assert batch_dim.dim_param and not batch_dim.HasField("dim_value")  # symbolic: any batch size


def test_onnx_classifier_agrees_with_the_torch_model(exported, test_images):
    run, _ = exported
    classifier = OnnxClassifier(run / "model.onnx")
    model, info = load_model(run)
    assert classifier.source == str(run / "model.onnx")
    assert classifier.image_shape == (28, 28) and classifier.class_names is None  # custom data: the digits
    got = classifier.probabilities(test_images)
    expected = probabilities(model, torch.from_numpy(test_images)).numpy()
    assert got.dtype == np.float32 and got.shape == (16, 10)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_metadata_records_what_the_file_is(tmp_path, session_data_dir):
    run = train_tiny(tmp_path, session_data_dir, "mlp", ema_decay=0.9)
    export_onnx(run, tmp_path / "out" / "ema.onnx")  # a folder that does not exist yet is made
    export_onnx(run, tmp_path / "raw.onnx", weights="raw")
    ema = {p.key: p.value for p in onnx.load(tmp_path / "out" / "ema.onnx").metadata_props}
    raw = {p.key: p.value for p in onnx.load(tmp_path / "raw.onnx").metadata_props}
    assert ema[FORMAT_KEY] == "1" and ema["digitlab_version"] == digitlab.__version__
    assert (ema["image_shape"], ema["num_classes"], ema["class_names"]) == ("[28, 28]", "10", "null")
    assert ema["model"] == "mlp" and ema["source_run"] == str(run.resolve()) and ema["opset"] == str(OPSET)
    assert (ema["weights"], raw["weights"]) == ("model-ema.safetensors", "model.safetensors")
    assert ema["weights_sha256"] != raw["weights_sha256"]
    assert onnx.load(tmp_path / "raw.onnx").opset_import[0].version == OPSET


def test_the_classifier_batches_and_checks_the_image_shape(monkeypatch, lstm_onnx, test_images):
    classifier = OnnxClassifier(lstm_onnx)
    whole = classifier.probabilities(test_images)
    monkeypatch.setattr(digitlab.inference.classifier, "ONNX_BATCH", 5)  # 16 images: calls of 5, 5, 5 and 1
    np.testing.assert_allclose(classifier.probabilities(test_images), whole, rtol=0, atol=1e-6)
    assert classifier.probabilities(test_images[:0]).shape == (0, 10)
    with pytest.raises(DataError, match=r"takes images of shape \(N, 28, 28\), got \(2, 12, 16\)"):
        classifier.probabilities(np.zeros((2, 12, 16), dtype=np.uint8))


def assert_refused(path, *words):
    with pytest.raises(CheckpointError) as caught:
        OnnxClassifier(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message


def test_files_that_are_not_our_onnx_models_are_refused(tmp_path, lstm_onnx):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model\n")
    assert_refused(text, "is not a usable ONNX model")

    data = lstm_onnx.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    assert_refused(truncated, "is not a usable ONNX model")

    foreign = tmp_path / "linear.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation notes
        torch.onnx.export(torch.nn.Linear(28, 10).eval(), (torch.zeros(1, 28),), str(foreign), dynamo=True)
    assert_refused(foreign, "not one digitlab exported", "digitlab export RUN --format onnx")

    proto = onnx.load(lstm_onnx)
    next(p for p in proto.metadata_props if p.key == FORMAT_KEY).value = "2"
    onnx.save(proto, tmp_path / "future.onnx")
    assert_refused(tmp_path / "future.onnx", "format '2'")

    assert_refused(tmp_path / "missing.onnx", "does not exist")


def test_a_failed_verification_leaves_no_file(monkeypatch, trained_run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"an earlier export")
    monkeypatch.setattr(digitlab.inference.export, "TOLERANCE", -1.0)  # no difference can pass
    with pytest.raises(ExportError, match="does not compute what PyTorch does") as caught:
        export_onnx(trained_run, out / "model.onnx")
    assert "\n" not in str(caught.value) and "nothing was written" in str(caught.value)
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]  # no temporary file left
    assert (out / "model.onnx").read_bytes() == b"an earlier export"  # and the old file untouched
    assert not (trained_run / "model.onnx").exists()


def test_export_verifies_on_random_images_without_the_runs_data(tmp_path, session_data_dir):
    run = train_tiny(tmp_path, session_data_dir, "mlp")
    config = (run / "config.json").read_text().replace(str(session_data_dir), str(tmp_path / "gone"))
    (run / "config.json").write_text(config)
    result = export_onnx(run)
    assert result["images"].startswith("64 pseudo-random images") and result["max_difference"] <= TOLERANCE


def test_cli_export_end_to_end(capsys, tmp_path, session_data_dir):
    run = train_tiny(tmp_path, session_data_dir, "cnn")
    assert main(["export", str(run), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert f"to {run / 'model.onnx'}: ONNX opset {OPSET}" in out
    assert "at batch sizes 1 and 64: logits within" in out and "(limit 1e-05)" in out
    assert OnnxClassifier(run / "model.onnx").image_shape == (28, 28)
    assert main(["export", str(run), "--out", str(tmp_path / "raw.onnx"), "--weights", "raw"]) == 0
    assert (tmp_path / "raw.onnx").is_file()


def test_cli_export_fails_with_one_line(capsys, tmp_path, monkeypatch):
    assert main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitlab: error: ") and err.count("\n") == 1 and "not a finished run" in err

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        digitlab.inference.onnx_model.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "onnxscript" else real_find_spec(name, *args),
    )
    assert main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "digitlab: error: ONNX export needs the export extra: pip install 'digitlab[export]' "
        "(not installed: onnxscript)\n"
    )


# --- the calibration travels in the file ------------------------------------------------------------------


@pytest.fixture(scope="module")
def calibrated_onnx(tmp_path_factory, session_data_dir):
    """(run, .onnx path) of a tiny MLP with a validation split, calibrated, then exported."""
    folder = tmp_path_factory.mktemp("calibrated-onnx")
    run = train_tiny(folder, session_data_dir, "mlp", val_size=60, ema_decay=0.9)  # calibrated: its average
    calibrate_run(run, str(session_data_dir))
    return run, export_onnx(run)["path"]


def test_the_onnx_file_answers_the_runs_calibrated_probabilities(calibrated_onnx, test_images):
    import onnxruntime

    run, path = calibrated_onnx
    calibration = read_calibration(run)
    assert calibration.temperature != pytest.approx(1.0, abs=1e-3)  # else this test would prove nothing
    metadata = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert float(metadata["temperature"]) == calibration.temperature
    assert json.loads(metadata["reject_below"]) == calibration.reject_below
    onnx_classifier, torch_classifier = OnnxClassifier(path), TorchClassifier(run)
    assert (onnx_classifier.temperature, onnx_classifier.reject_below) == (
        torch_classifier.temperature,
        torch_classifier.reject_below,
    )
    expected = torch_classifier.probabilities(test_images)
    np.testing.assert_allclose(onnx_classifier.probabilities(test_images), expected, rtol=0, atol=1e-5)
    # Any onnxruntime user: the graph's logits are already divided by T, so a plain softmax is calibrated.
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": test_images.astype(np.float32)})
    np.testing.assert_allclose(logits, torch_logits(run, test_images) / calibration.temperature, rtol=0, atol=1e-5)
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(), expected, rtol=0, atol=1e-5)


def test_an_onnx_file_without_calibration_metadata_still_loads(calibrated_onnx, tmp_path):
    _, path = calibrated_onnx
    proto = onnx.load(path)
    kept = [p for p in proto.metadata_props if p.key not in ("temperature", "reject_below")]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, tmp_path / "before-calibration.onnx")
    classifier = OnnxClassifier(tmp_path / "before-calibration.onnx")
    assert (classifier.temperature, classifier.reject_below) == (1.0, None)

    proto.metadata_props.add(key="temperature", value="-2")
    onnx.save(proto, tmp_path / "damaged.onnx")
    assert_refused(tmp_path / "damaged.onnx", "damaged digitlab metadata", "temperature")


def test_an_uncalibrated_run_exports_temperature_one(lstm_onnx):
    classifier = OnnxClassifier(lstm_onnx)
    assert (classifier.temperature, classifier.reject_below) == (1.0, None)


def test_cli_export_says_whether_the_file_is_calibrated(capsys, calibrated_onnx, tmp_path):
    run, _ = calibrated_onnx
    temperature = read_calibration(run).temperature
    assert main(["export", str(run), "--out", str(tmp_path / "calibrated.onnx")]) == 0
    assert f"divided by the run's temperature {temperature:.4g} inside the graph" in capsys.readouterr().out
    assert main(["export", str(run), "--out", str(tmp_path / "raw.onnx"), "--weights", "raw"]) == 0
    assert "uncalibrated (temperature 1): 'digitlab calibrate" in capsys.readouterr().out
