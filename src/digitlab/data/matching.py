"""matching_test_data: the test data a trained model may be evaluated or asked on, of its image size and
classes, and of the dataset it was trained on unless the user names a folder of their own."""

from __future__ import annotations

from digitlab.data.dataset import Dataset, load
from digitlab.data.fetch import named_folder
from digitlab.data.known import KNOWN
from digitlab.errors import ConfigError


def matching_test_data(data_dir: str | None, info: dict) -> Dataset:
    """From a folder the user names: any files but another known dataset than the run's (a person's own test
    digits are custom data); else the dataset the run was trained on (runs before 0.2 did not record it:
    MNIST then). `info` is the run's (inference.load.load_model's): image_shape, num_classes, dataset."""
    trained_on = info.get("dataset", "auto")
    if not named_folder(data_dir):
        dataset = load(data_dir, expect=trained_on)
    else:
        dataset = load(data_dir)
        if dataset.verified and trained_on in KNOWN and dataset.name != trained_on:
            raise ConfigError(
                f"the model was trained on {KNOWN[trained_on].title} but {named_folder(data_dir)} holds "
                f"{dataset.title}; pass the run's own --data-dir"
            )
    if list(dataset.image_shape) != list(info["image_shape"]):
        raise ConfigError(
            f"the model was trained on {info['image_shape']} images but this data has "
            f"{list(dataset.image_shape)}; pass the run's own --data-dir"
        )
    if dataset.num_classes > info["num_classes"]:
        raise ConfigError(
            f"the model was trained on {info['num_classes']} classes but this data has labels up to "
            f"{dataset.num_classes - 1}; pass the run's own --data-dir"
        )
    return dataset
