"""Principle 15, checked: every registry is an explicit dict keyed by the `type` names of a schema union, and its
key set equals that union's. Plus the facts the schema's rules read from those tables, checked against what the
loaders and builders actually produce.
"""

from __future__ import annotations

import typing

import numpy as np
import pytest

from mlcli.config.data_schema import DATASET_FACTS, DataConfig
from mlcli.config.load import load_config_text
from mlcli.data.bundled import BUNDLED, SKLEARN_LOADERS
from mlcli.data.pipeline import OFFICIAL_SPLIT_TYPES, load_dataset
from mlcli.data.registry import DATASETS, LOADERS, names
from mlcli.data.synthetic import SYNTHETIC


def union_tags(union) -> set[str]:
    """The `type` literals of the members of an `Annotated[A | B | ..., Field(discriminator="type")]` union."""
    members = typing.get_args(typing.get_args(union)[0])
    return {tag for member in members for tag in typing.get_args(member.model_fields["type"].annotation)}


# ------------------------------------------------------------------------------------------------- datasets


def test_dataset_registry_facts_and_loaders_have_the_schema_data_types():
    tags = union_tags(DataConfig)
    assert {"iris", "mnist", "npz"} <= tags
    assert set(DATASET_FACTS) == tags
    assert set(LOADERS) == tags
    assert set(DATASETS) == tags
    assert all(spec.name == name and spec.facts is DATASET_FACTS[name] for name, spec in DATASETS.items())


def test_per_kind_tables_are_the_registry_rows_of_that_kind():
    assert set(SYNTHETIC) == set(names(kind="synthetic")) == {"spirals", "blobs", "xor", "checkerboard",
                                                              "linear_regression"}
    assert set(BUNDLED) == set(SKLEARN_LOADERS) == set(names(kind="bundled"))
    assert set(OFFICIAL_SPLIT_TYPES) == {"mnist", "fashion_mnist", "cifar10"}


@pytest.mark.parametrize("name", sorted(names(kind="synthetic") + names(kind="bundled")))
def test_known_facts_match_the_loaded_dataset(name):
    facts = DATASET_FACTS[name]
    model = "mlp" if facts.task == "classification" else "linear_regression"
    cfg = load_config_text(f"data: {{type: {name}}}\nmodel: {{type: {model}}}\n", "c.yaml")
    ds = load_dataset(cfg.data, np.random.default_rng(0))
    assert ds.task == facts.task == cfg.task()
    assert facts.layout == "tabular" and ds.x.ndim == 2
    if facts.shape is not None:
        assert ds.input_shape == facts.shape
    if facts.classes is not None:
        assert ds.n_classes == facts.classes


def test_digits_image_shape_is_what_as_images_loads():
    cfg = load_config_text("data: {type: digits, as_images: true}\nmodel: {type: cnn, layers: [{type: flatten}]}\n",
                           "c.yaml")
    assert load_dataset(cfg.data, np.random.default_rng(0)).input_shape == DATASET_FACTS["digits"].image_shape
    assert cfg.is_image_data()


def test_file_datasets_take_their_task_from_the_section():
    text = "data: {type: csv, path: x.csv, label_column: y, task: regression}\nmodel: {type: linear_regression}\n"
    assert load_config_text(text, "c.yaml").task() == "regression"
    assert DATASET_FACTS["csv"].task == "either"
