"""Datasets with an official test split (MNIST, Fashion-MNIST, CIFAR-10): the facts the README's data section
states, each proven here: `test_fraction` is refused, the official test files are the test split in full, val is
a fraction of the training files, pixels are bytes / 255 then standardized per channel, and the loaders refuse
labels outside 0..9 and image/label counts that differ."""

from __future__ import annotations

import pickle
import struct
import typing
from pathlib import Path

import numpy as np
import pytest

from mlcli.config.data_schema import DATASET_FACTS, Cifar10Data, DataConfig, MnistData, OfficialSplitData
from mlcli.config.load import build_config, load_config_text
from mlcli.data.pipeline import OFFICIAL_SPLIT_TYPES, load_dataset, prepare
from mlcli.errors import ConfigError, DataError
from mlcli.seeding import generators

RNG = np.random.default_rng(14)
OFFICIAL = ("mnist", "fashion_mnist", "cifar10")


def write_idx(folder: Path, prefix: str, x: np.ndarray, y: np.ndarray) -> None:
    """`<prefix>-images-idx3-ubyte` (x: (N, 28, 28) uint8) and `<prefix>-labels-idx1-ubyte` (y: (N,))."""
    folder.mkdir(parents=True, exist_ok=True)
    n, rows, cols = x.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">4I", 2051, n, rows, cols) + x.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">2I", 2049, len(y)) + y.astype(np.uint8).tobytes())


def balanced_labels(per_class: int) -> np.ndarray:
    return RNG.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)


def write_mnist_folder(folder: Path, train_per_class: int, test_per_class: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    parts = {}
    for prefix, y in (("train", balanced_labels(train_per_class)), ("t10k", balanced_labels(test_per_class))):
        x = RNG.integers(0, 256, size=(len(y), 28, 28), dtype=np.uint8)
        write_idx(folder, prefix, x, y)
        parts[prefix] = (x, y.astype(np.int64))
    return parts


def write_cifar_bin(folder: Path, per_batch_per_class: int, test_per_class: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        y = balanced_labels(per_batch_per_class if name != "test_batch.bin" else test_per_class)
        x = RNG.integers(0, 256, size=(len(y), 3072), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([y.astype(np.uint8)[:, None], x], axis=1).tobytes())


def config(data: str, **sections):
    return load_config_text(f"data: {data}\nmodel: {{type: mlp, hidden: [4]}}\n", "c.yaml", **sections)


# ------------------------------------------------------------------------------------- test_fraction refused


@pytest.mark.parametrize("kind", OFFICIAL)
def test_test_fraction_is_a_config_error_naming_the_field_and_the_official_test_files(kind):
    with pytest.raises(ConfigError) as err:
        config(f"{{type: {kind}, path: d, test_fraction: 0.3}}")
    message = str(err.value)
    assert message.startswith("c.yaml:1:")
    assert "data.test_fraction: has no effect: the official test files are the test split" in message
    assert "val_fraction is a fraction of the official training files" in message


def test_test_fraction_is_refused_from_set_too():
    with pytest.raises(ConfigError, match=r"^--set data.test_fraction: has no effect"):
        config("{type: mnist, path: d}", overrides=["data.test_fraction=0.15"])


def test_official_split_config_round_trips_without_test_fraction():
    cfg = config("{type: cifar10, path: d, val_fraction: 0.2}")
    resolved = cfg.resolved()
    assert "test_fraction" not in resolved["data"]
    assert build_config(resolved, "again", {}).data == cfg.data


def test_other_datasets_keep_test_fraction():
    assert config("{type: iris, test_fraction: 0.3}").data.test_fraction == 0.3


def test_official_split_sections_are_exactly_the_datasets_with_official_test_files():
    sections = typing.get_args(typing.get_args(DataConfig)[0])
    official = {name for cls in sections if issubclass(cls, OfficialSplitData)
                for name in typing.get_args(cls.model_fields["type"].annotation)}
    assert official == {name for name, facts in DATASET_FACTS.items() if facts.official_test_split}
    assert official == set(OFFICIAL_SPLIT_TYPES) == set(OFFICIAL)
    assert issubclass(MnistData, OfficialSplitData) and issubclass(Cifar10Data, OfficialSplitData)


# ------------------------------------------------------------------------------------------ the split sizes


def test_mnist_test_split_is_the_t10k_files_and_val_a_fraction_of_the_training_files(tmp_path):
    parts = write_mnist_folder(tmp_path / "m", train_per_class=8, test_per_class=2)
    cfg = config(f"{{type: mnist, path: {tmp_path / 'm'}, val_fraction: 0.25, standardize: false}}")
    data = prepare(cfg.data, generators(0), dtype=np.float64)
    # val: round(0.25 * 8) = 2 of each class of the 80 training images; the 20 t10k images are the test split
    assert (data.train.n, data.val.n, data.test.n) == (60, 20, 20)
    np.testing.assert_array_equal(np.bincount(data.val.y, minlength=10), np.full(10, 2))
    x_test, y_test = parts["t10k"]
    np.testing.assert_array_equal(data.test.y, y_test)
    np.testing.assert_array_equal(data.test.x[:, 0], x_test / 255.0)  # pixels are bytes / 255


def test_cifar10_test_split_is_test_batch_and_val_a_fraction_of_the_five_training_batches(tmp_path):
    write_cifar_bin(tmp_path / "c", per_batch_per_class=2, test_per_class=1)
    cfg = config(f"{{type: cifar10, path: {tmp_path / 'c'}, val_fraction: 0.1}}")
    data = prepare(cfg.data, generators(0), dtype=np.float64)
    # 5 batches x 2 per class = 10 of each class; val: round(0.1 * 10) = 1 of each
    assert (data.train.n, data.val.n, data.test.n) == (90, 10, 10)
    assert data.train.x.shape[1:] == (3, 32, 32)
    # standardized per channel with the training split's statistics: each channel of train has mean 0, std 1
    np.testing.assert_allclose(data.train.x.mean(axis=(0, 2, 3)), 0.0, atol=1e-9)
    np.testing.assert_allclose(data.train.x.std(axis=(0, 2, 3)), 1.0, atol=1e-9)
    assert data.standardizer.per_channel


# --------------------------------------------------------------------------------- the loaders' label checks


def test_mnist_label_outside_0_to_9_is_refused_naming_file_and_row(tmp_path):
    y = np.array([0, 1, 10, 3], dtype=np.uint8)
    write_idx(tmp_path, "train", np.zeros((4, 28, 28), np.uint8), y)
    cfg = config(f"{{type: mnist, path: {tmp_path}}}")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: label at row 2 is 10, expected 0..9"):
        load_dataset(cfg.data, np.random.default_rng(0), split="train")


def test_fashion_mnist_image_and_label_counts_must_match(tmp_path):
    write_idx(tmp_path, "t10k", np.zeros((5, 28, 28), np.uint8), np.arange(4, dtype=np.uint8))
    cfg = config(f"{{type: fashion_mnist, path: {tmp_path}}}")
    with pytest.raises(DataError, match=r"holds 5 images but t10k-labels-idx1-ubyte holds 4 labels"):
        load_dataset(cfg.data, np.random.default_rng(0), split="test")


def test_cifar10_binary_label_outside_0_to_9_is_refused(tmp_path):
    write_cifar_bin(tmp_path, per_batch_per_class=1, test_per_class=1)
    raw = bytearray((tmp_path / "test_batch.bin").read_bytes())
    raw[3073] = 200  # the label byte of record 1
    (tmp_path / "test_batch.bin").write_bytes(bytes(raw))
    cfg = config(f"{{type: cifar10, path: {tmp_path}}}")
    with pytest.raises(DataError, match=r"test_batch.bin: label at row 1 is 200, expected 0..9"):
        load_dataset(cfg.data, np.random.default_rng(0), split="test")


@pytest.mark.parametrize(("labels", "message"), [
    ([0, -1], r"label at row 1 is -1, expected 0..9"),
    ([0, 10], r"label at row 1 is 10, expected 0..9"),
    ([0], r"b'labels' should be a list of 2 ints, found 1"),
])
def test_cifar10_python_labels_are_checked(tmp_path, labels, message):
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": labels if name == "test_batch" else [0, 1]}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=4))
    cfg = config(f"{{type: cifar10, path: {tmp_path}}}")
    with pytest.raises(DataError, match=message):
        load_dataset(cfg.data, np.random.default_rng(0), split="test")
