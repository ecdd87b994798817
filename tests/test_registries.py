"""Principle 15, checked: every registry is an explicit dict keyed by the `type` names of a schema union, and its
key set equals that union's. Plus the facts the schema's rules read from those tables, checked against what the
loaders and builders actually produce.
"""

from __future__ import annotations

import re
import typing

import numpy as np
import pytest
from pydantic import TypeAdapter

from mlcli.config.data_schema import DATASET_FACTS, DataConfig
from mlcli.config.load import load_config_text
from mlcli.config.model_schema import MODEL_FACTS, CnnLayer, ModelConfig
from mlcli.data.bundled import BUNDLED, SKLEARN_LOADERS
from mlcli.data.pipeline import OFFICIAL_SPLIT_TYPES, load_dataset
from mlcli.data.registry import DATASETS, LOADERS, names
from mlcli.data.synthetic import SYNTHETIC
from mlcli.errors import ConfigError
from mlcli.models.cnn import LAYER_BUILDERS, make_layer
from mlcli.models.context import BuildContext
from mlcli.models.registry import MODEL_BUILDERS, build_model, n_outputs


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


def test_downloadable_datasets_are_the_sections_with_a_download_field():
    from mlcli.data.download import KNOWN_FILES

    members = typing.get_args(typing.get_args(DataConfig)[0])
    with_download = {tag for m in members if "download" in m.model_fields
                     for tag in typing.get_args(m.model_fields["type"].annotation)}
    assert set(KNOWN_FILES) == with_download == set(OFFICIAL_SPLIT_TYPES)


def test_file_datasets_take_their_task_from_the_section():
    text = "data: {type: csv, path: x.csv, label_column: y, task: regression}\nmodel: {type: linear_regression}\n"
    assert load_config_text(text, "c.yaml").task() == "regression"
    assert DATASET_FACTS["csv"].task == "either"


# ---------------------------------------------------------------------------------------------- model types

SMALL_MODELS = {
    "softmax": ("{type: iris}", "{type: softmax}"),
    "mlp": ("{type: iris}", "{type: mlp, hidden: [4]}"),
    "autoencoder": ("{type: iris}", "{type: autoencoder, encoder: [2]}"),
    "linear_regression": ("{type: diabetes}", "{type: linear_regression}"),
    "knn": ("{type: iris}", "{type: knn}"),
    "gaussian": ("{type: iris}", "{type: gaussian}"),
    "cnn": ("{type: digits, as_images: true}", "{type: cnn, layers: [{type: conv, out_channels: 2}]}"),
    "lenet5": ("{type: digits, as_images: true}", "{type: lenet5}"),
    "vgg": ("{type: digits, as_images: true}", "{type: vgg, widths: [2], hidden: [4]}"),
}


def test_model_facts_and_builders_have_the_schema_model_types():
    tags = union_tags(ModelConfig)
    assert {"softmax", "knn", "cnn", "alexnet"} <= tags
    assert set(MODEL_FACTS) == tags
    assert set(MODEL_BUILDERS) == tags
    # alexnet and zfnet are built in test_cnn_models (227x227), multitask in test_multitask (it needs targets)
    assert set(SMALL_MODELS) | {"alexnet", "zfnet", "multitask"} == tags


@pytest.mark.parametrize("model_type", sorted(SMALL_MODELS))
def test_a_built_model_is_what_its_facts_say(model_type):
    data, model = SMALL_MODELS[model_type]
    cfg = load_config_text(f"data: {data}\nmodel: {model}\n", "c.yaml")
    facts = MODEL_FACTS[model_type]
    shape = DATASET_FACTS[cfg.data.type].image_shape if cfg.is_image_data() else DATASET_FACTS[cfg.data.type].shape
    classes = DATASET_FACTS[cfg.data.type].classes or 0
    ctx = BuildContext(input_shape=shape, n_outputs=n_outputs(cfg, classes, 1, int(np.prod(shape))),
                       init_rng=np.random.default_rng(0), dropout_rng=np.random.default_rng(0))
    built = build_model(cfg, ctx)
    assert built.task == facts.task == cfg.task()
    assert built.is_network == (not facts.fitted) == (not cfg.is_fitted_in_closed_form())
    if facts.fitted:
        assert facts.losses == () and cfg.loss_config() is None
    else:
        assert built.loss == facts.losses[0] == cfg.loss_config().type


def test_closed_form_solver_makes_a_trained_model_type_fitted():
    cfg = load_config_text("data: {type: diabetes}\nmodel: {type: linear_regression, solver: closed_form}\n",
                           "c.yaml")
    assert not MODEL_FACTS["linear_regression"].fitted and cfg.is_fitted_in_closed_form()
    assert not build_model(cfg, BuildContext(input_shape=(10,), n_outputs=1)).is_network


@pytest.mark.parametrize("rule", ["classifier", "regression", "newton"])
def test_schema_rules_read_the_model_facts(rule):
    config = {"classifier": "data: {type: diabetes}\nmodel: {type: vgg}\n",
              "regression": "data: {type: iris}\nmodel: {type: linear_regression}\n",
              "newton": "data: {type: iris}\nmodel: {type: mlp}\ntrain: {optimizer: {type: newton}}\n"}[rule]
    expected = {"classifier": "model.type: vgg is a classifier but data.type diabetes is a regression dataset; "
                              "use linear_regression",
                "regression": "model.type: linear_regression needs regression data",
                "newton": "newton is for small models (softmax, linear_regression), not model.type mlp"}[rule]
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config_text(config, "c.yaml")


# --------------------------------------------------------------------------------------------- CNN layers


def test_cnn_layer_builders_have_the_schema_layer_types():
    tags = union_tags(CnnLayer)
    assert {"conv", "maxpool", "flatten", "relu"} <= tags
    assert set(LAYER_BUILDERS) == tags


@pytest.mark.parametrize("layer_type", sorted(union_tags(CnnLayer)))
def test_every_cnn_layer_type_builds_and_knows_its_output_shape(layer_type):
    options = {"conv": {"out_channels": 3}, "linear": {"units": 3}}.get(layer_type, {})
    spec = TypeAdapter(CnnLayer).validate_python({"type": layer_type, **options})
    shape = (72,) if layer_type == "linear" else (2, 6, 6)
    cfg = load_config_text("data: {type: digits, as_images: true}\nmodel: {type: cnn, layers: [{type: flatten}]}\n",
                           "c.yaml").model
    ctx = BuildContext(input_shape=shape, n_outputs=2, init_rng=np.random.default_rng(0),
                       dropout_rng=np.random.default_rng(0))
    layer = make_layer(spec, shape, cfg, ctx)
    expected = {"conv": (3, 4, 4), "maxpool": (2, 3, 3), "avgpool": (2, 3, 3), "flatten": (72,),
                "linear": (3,)}.get(layer_type, shape)
    assert tuple(layer.output_shape(shape)) == expected
