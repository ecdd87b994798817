"""Bad input from the user, end to end: each is ONE stderr line "error: ..." naming where, with the exit code of
its kind (2 config, 3 data) and no traceback. Also `mlcli config show|validate|schema`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import TINY_IRIS

# Line 13 of this file is the typo, indented 4 spaces: the error must say config.yaml:13:5.
TYPO = TINY_IRIS.replace("    momentum: 0.9\n", "    momentun: 0.9\n")


def test_unknown_key_names_file_line_column_field_and_the_closest_valid_key(cli, write_config, runs_dir,
                                                                             one_line_error):
    path = write_config(TYPO)
    assert path.read_text().splitlines()[12] == "    momentun: 0.9"
    result = cli("train", path, "--runs-dir", runs_dir)
    line = one_line_error(result, 2)
    assert line == f"error: {path}:13:5: train.optimizer.momentun: unknown key; did you mean 'momentum'?"
    assert not runs_dir.exists()  # nothing is created for an invalid config


ADAMW = TINY_IRIS.replace("type: momentum", "type: adamw").replace("    momentum: 0.9\n", "")


def test_unknown_type_value_lists_the_choices_and_suggests_one(cli, write_config, runs_dir, one_line_error):
    path = write_config(ADAMW)
    line = one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, str(path), "train.optimizer")
    assert "sgd, momentum" in line and "got 'adamw'" in line and "did you mean 'adam'?" in line


def test_unknown_type_value_points_at_the_type_key(cli, write_config, runs_dir, one_line_error):
    path = write_config(ADAMW)
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, f"{path}:11:5: train.optimizer.type: ")


def test_wrong_type_names_the_field_what_was_expected_and_what_was_found(cli, write_config, runs_dir,
                                                                          one_line_error):
    path = write_config(TINY_IRIS.replace("epochs: 3", "epochs: three"))
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, f"{path}:8:3:", "train.epochs",
                   "expected an integer", "three")


def test_a_number_written_as_a_string_is_a_type_error(cli, write_config, runs_dir, one_line_error):
    path = write_config(TINY_IRIS.replace("lr: 0.05", "lr: '0.05'"))
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, "train.optimizer.lr", "expected a finite number")


def test_negative_learning_rate_is_rejected_with_the_bound(cli, write_config, runs_dir, one_line_error):
    path = write_config(TINY_IRIS.replace("lr: 0.05", "lr: -0.05"))
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, f"{path}:12:5:", "train.optimizer.lr",
                   "must be > 0", "-0.05")


def test_missing_config_file_exits_2_naming_it(cli, tmp_path, runs_dir, one_line_error):
    missing = tmp_path / "nope.yaml"
    one_line_error(cli("train", missing, "--runs-dir", runs_dir), 2, str(missing), "no such config file")


def test_yaml_python_tag_is_refused_before_anything_runs(cli, tmp_path, write_config, runs_dir, one_line_error):
    marker = tmp_path / "pwned"
    path = write_config(f"name: !!python/object/apply:builtins.open ['{marker}', 'w']\n" + TINY_IRIS.replace(
        "name: tiny\n", ""))
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, f"{path}:1:", "tags are not allowed")
    assert not marker.exists()


def test_duplicate_keys_name_both_lines(cli, write_config, runs_dir, one_line_error):
    path = write_config(TINY_IRIS.replace("  epochs: 3\n", "  epochs: 3\n  epochs: 4\n"))
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, f"{path}:9:", "duplicate key 'epochs'",
                   "line 8")


def test_train_section_for_knn_has_no_effect_and_is_an_error(cli, write_config, runs_dir, one_line_error):
    path = write_config("data: {type: iris}\nmodel: {type: knn}\ntrain: {epochs: 3}\n")
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, str(path), "train.epochs", "has no effect",
                   "knn")


def test_bias_correction_for_sgd_is_an_error(cli, write_config, runs_dir, one_line_error):
    path = write_config(TINY_IRIS.replace("type: momentum", "type: sgd").replace(
        "    momentum: 0.9\n", "    bias_correction: false\n"))
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 2, f"{path}:13:5:",
                   "train.optimizer.bias_correction")


def test_set_of_an_unknown_key_names_the_override(cli, write_config, runs_dir, one_line_error):
    path = write_config(TINY_IRIS)
    line = one_line_error(cli("train", path, "--runs-dir", runs_dir, "--set", "train.optimizer.momentun=0.5"), 2)
    assert line == "error: --set train.optimizer.momentun: unknown key; did you mean 'momentum'?"


def test_set_with_a_wrong_value_names_the_override(cli, write_config, runs_dir, one_line_error):
    path = write_config(TINY_IRIS)
    one_line_error(cli("train", path, "--runs-dir", runs_dir, "--set", "train.epochs=-1"), 2,
                   "--set train.epochs", "must be >= 1", "-1")


def test_set_without_equals_sign_is_a_usage_error(cli, write_config, runs_dir, one_line_error):
    path = write_config(TINY_IRIS)
    one_line_error(cli("train", path, "--runs-dir", runs_dir, "--set", "train.epochs"), 2, "--set",
                   "key=value")


def test_missing_data_file_exits_3_naming_it(cli, tmp_path, write_config, runs_dir, one_line_error):
    path = write_config("data: {type: csv, path: absent.csv, label_column: y}\nmodel: {type: softmax}\n")
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 3, "absent.csv: no such file")
    assert not runs_dir.exists()


@pytest.mark.parametrize("cell", ["nan", ""], ids=["nan", "empty"])
def test_nan_in_a_csv_exits_3_naming_row_and_column(cli, tmp_path, write_config, runs_dir, one_line_error, cell):
    rows = ["a,b,label", "1,2,x", f"3,{cell},y"] + [f"{i},{i + 1},{'xy'[i % 2]}" for i in range(20)]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    path = write_config("data: {type: csv, path: table.csv, label_column: label}\nmodel: {type: softmax}\n")
    one_line_error(cli("train", path, "--runs-dir", runs_dir), 3, "table.csv", "row 3", "'b'")
    assert not runs_dir.exists()


# ------------------------------------------------------------------------------------------ config commands


def test_config_show_prints_the_resolved_config_with_defaults_and_overrides(cli, write_config):
    result = cli("config", "show", write_config(TINY_IRIS), "--set", "train.optimizer.lr=0.01")
    assert result.exit_code == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["seed"] == 0
    assert shown["train"]["optimizer"]["lr"] == 0.01
    assert shown["train"]["schedule"]["type"] == "constant"
    assert shown["data"]["val_fraction"] == 0.15
    assert shown["cv"]["folds"] == 5


def test_config_validate_exits_0_for_a_valid_and_2_for_an_invalid_config(cli, write_config, one_line_error):
    ok = cli("config", "validate", write_config(TINY_IRIS))
    assert ok.exit_code == 0, ok.stderr
    assert "valid" in ok.stdout
    bad = cli("config", "validate", write_config(TYPO, "typo.yaml"))
    one_line_error(bad, 2, "typo.yaml:13:5", "momentun")


def test_config_schema_is_json_with_the_sections(cli):
    result = cli("config", "schema")
    assert result.exit_code == 0, result.stderr
    schema = json.loads(result.stdout)
    assert {"data", "model", "train", "seed"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


# ------------------------------------------------------------------------------- errors found while building

# A conv stack that cannot fit 9x9 images: layer 2 (line 11, its item at column 7) strides 3 over a 7x7 map.
CONV = """\
name: conv
data:
  type: npz
  path: {npz}
model:
  type: cnn
  layers:
    - type: conv
      out_channels: 4
    - type: relu
    - type: conv
      out_channels: 4
      stride: 3
train:
  epochs: 1
"""
CONV_ERROR = "model.layers.2 (conv): input (4, 7, 7): conv: (7 + 2*0 - 3) / 3 + 1 = 2.33 is not a whole number"


@pytest.fixture
def conv_config(tmp_path, write_config):
    npz = tmp_path / "images.npz"
    np.savez(npz, x=np.zeros((12, 1, 9, 9)), y=np.arange(12) % 2)
    return write_config(CONV.format(npz=npz), "conv.yaml")


@pytest.mark.parametrize("command", [("train",), ("config", "validate"), ("summary",)], ids=" ".join)
def test_an_impossible_conv_stack_names_the_config_file_line_and_layer(cli, conv_config, runs_dir, one_line_error,
                                                                       command):
    assert conv_config.read_text().splitlines()[10] == "    - type: conv"
    options = ("--quiet", "--runs-dir", runs_dir) if command == ("train",) else ()
    line = one_line_error(cli(*command, conv_config, *options), 2, "conv.yaml:", "model.layers.2 (conv)")
    assert line == f"error: {conv_config}:11:7: {CONV_ERROR}"


def test_a_named_architecture_that_does_not_fit_points_at_the_model_section(cli, tmp_path, write_config,
                                                                           one_line_error):
    npz = tmp_path / "wide.npz"
    np.savez(npz, x=np.zeros((12, 3, 32, 32)), y=np.arange(12) % 2)
    path = write_config(f"data: {{type: npz, path: {npz}}}\nmodel:\n  type: alexnet\n", "alex.yaml")
    line = one_line_error(cli("config", "validate", path), 2, "model.type alexnet is defined for inputs")
    assert line.startswith(f"error: {path}:3:3: model.type alexnet")


def test_located_leaves_a_message_alone_for_a_config_not_read_from_a_file():
    from mlcli.config.load import load_config_text, located
    from mlcli.config.schema import Config

    read = load_config_text("data: {type: iris}\nmodel:\n  type: mlp\n", "c.yaml")
    assert located(read, "model.type mlp: x") == "c.yaml:3:3: model.type mlp: x"
    assert located(read, "train.epochs: x") == "c.yaml: train.epochs: x"  # not written: the file alone
    built = Config.model_validate({"data": {"type": "iris"}, "model": {"type": "mlp"}})
    assert located(built, "model.type mlp: x") == "model.type mlp: x"
