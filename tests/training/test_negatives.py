"""Training with non-digits (--negatives, outlier exposure) and from another run's weights (--init), on tiny
synthetic data: the loss of a non-digit, non-digits trained towards equal probabilities, validation kept to
digits, fine-tuning from a run's weights and the refusal of a run of another network."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from digitlab.config import TrainConfig
from digitlab.data.dataset import NOT_A_DIGIT, load
from digitlab.errors import ConfigError
from digitlab.inference.load import load_model
from digitlab.store import rundir
from digitlab.training import distributed
from digitlab.training.fit import fit
from digitlab.training.loop import NEGATIVE_WEIGHT, summed_loss
from digitlab.training.session import build_session


def quiet(*args, **kwargs):
    pass


def tiny(run_dir, data_dir, **changes) -> TrainConfig:
    settings = dict(
        model="mlp", hidden_size=32, num_layers=1, batch_size=25, epochs=6, lr=0.01, run_dir=str(run_dir), threads=1,
        device="cpu", progress="none", data_dir=str(data_dir), test_eval="none",
    )  # fmt: skip
    return TrainConfig(**(settings | changes))


def noise(count: int, seed: int = 0) -> torch.Tensor:
    """Non-digits for the tests: uniform noise, unlike the synthetic classes."""
    return torch.randint(0, 256, (count, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def max_probability(run_dir, images: torch.Tensor) -> float:
    from digitlab.inference.classifier import probabilities

    model, _ = load_model(run_dir)
    return float(probabilities(model, images).max(dim=1).values.mean())


# --- the loss --------------------------------------------------------------------------------------------


def test_a_non_digit_costs_its_divergence_from_uniform_and_a_digit_its_cross_entropy():
    config = TrainConfig(negatives=1, label_smoothing=0.1)
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0], [3.0, -2.0, 0.0]])
    labels = torch.tensor([0, NOT_A_DIGIT, NOT_A_DIGIT])
    expected = F.cross_entropy(logits[:1], labels[:1], reduction="sum", label_smoothing=0.1)
    log_p = torch.log_softmax(logits[2], dim=0)
    expected += NEGATIVE_WEIGHT * (-log_p.mean() - math.log(3))  # KL(uniform || p); the uniform row costs 0
    assert torch.allclose(summed_loss(logits, labels, config), expected)


def test_without_negatives_the_loss_is_the_plain_cross_entropy():
    logits, labels = torch.randn(8, 10), torch.randint(0, 10, (8,))
    config = TrainConfig(label_smoothing=0.1)
    assert torch.equal(
        summed_loss(logits, labels, config), F.cross_entropy(logits, labels, reduction="sum", label_smoothing=0.1)
    )


# --- fit with negatives ------------------------------------------------------------------------------------


def test_non_digits_are_trained_towards_equal_probabilities(session_data_dir, tmp_path):
    dataset = load(session_data_dir, log=quiet)
    pool, held_out = noise(300, seed=1), noise(100, seed=2)
    plain = fit(tiny(tmp_path / "plain", session_data_dir), dataset, log=quiet)
    taught = fit(tiny(tmp_path / "taught", session_data_dir, negatives=300), dataset, log=quiet, negatives=pool)
    # on non-digits it never saw, the taught model is far less sure than the plain one; on digits it stays sure
    assert max_probability(taught, held_out) < 0.5 * max_probability(plain, held_out)
    assert max_probability(taught, held_out) < 0.3
    digits = dataset.test_images[:100]
    assert max_probability(taught, digits) > 0.5
    config = json.loads((taught / rundir.CONFIG).read_text())
    assert config["negatives"] == 300 and config["init"] is None


def test_non_digits_join_the_training_split_only(session_data_dir, tmp_path):
    lines = []
    config = tiny(tmp_path / "run", session_data_dir, negatives=40, val_size=50, epochs=1)
    fit(config, log=lambda *args, **kwargs: lines.append(" ".join(map(str, args))), negatives=noise(60))
    # 300 synthetic training examples, 50 held out, and the first 40 of the 60 non-digits given
    assert any("on 290 examples" in line and "40 of the examples non-digits" in line for line in lines)


def test_fit_refuses_too_few_non_digits(session_data_dir, tmp_path):
    with pytest.raises(ConfigError, match="--negatives 50 needs that many"):
        fit(tiny(tmp_path / "run", session_data_dir, negatives=50), log=quiet, negatives=noise(10))
    assert not (tmp_path / "run").exists()


# --- fine-tuning from a run's weights (--init) ------------------------------------------------------------


def test_init_starts_from_the_runs_weights(trained_run, tmp_path):
    base = rundir.load_config(trained_run)
    config = base.replace(init=str(trained_run), run_dir=str(tmp_path / "tuned"), seed=base.seed + 7)
    session = build_session(config, (28, 28), 10, torch.device("cpu"), distributed.Context())
    saved, _ = rundir.read_weights(trained_run)
    state = session.model.state_dict()
    assert state.keys() == saved.keys() and all(torch.equal(state[k], saved[k]) for k in saved)
    # without --init the other seed gives other weights: the run's weights came from the file
    drawn = build_session(config.replace(init=None), (28, 28), 10, torch.device("cpu"), distributed.Context())
    assert not all(torch.equal(drawn.model.state_dict()[k], saved[k]) for k in saved)


def test_init_refuses_a_run_of_another_network(trained_run, tmp_path):
    base = rundir.load_config(trained_run)
    config = base.replace(init=str(trained_run), run_dir=str(tmp_path / "tuned"), hidden_size=32)
    with pytest.raises(ConfigError, match="holds another network") as caught:
        build_session(config, (28, 28), 10, torch.device("cpu"), distributed.Context())
    assert "\n" not in str(caught.value)


def test_init_refuses_what_is_not_a_finished_run(tmp_path):
    with pytest.raises(ConfigError, match="is not a finished run"):
        TrainConfig(init=str(tmp_path)).validate()
