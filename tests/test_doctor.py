"""`mlcli doctor`: a sound config passes, and a config made to fail each check fails exactly there."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CONFIGS, invoke

from mlcli.config.load import load_config_text
from mlcli.nn.activations import Tanh
from mlcli.workflows.doctor import doctor

IRIS = "name: iris\nseed: 0\ndata: {type: iris}\n"
MLP = IRIS + "model: {type: mlp, hidden: [16], activation: tanh%s}\n"
TRAIN = "train: {epochs: 5, batch_size: 16, optimizer: {type: %s, lr: %s}}\n"
SOUND = MLP % "" + TRAIN % ("momentum", 0.05)


def config_of(text_or_path):
    return load_config_text(text_or_path, "c.yaml") if isinstance(text_or_path, str) else text_or_path


def statuses(config, **kwargs) -> dict[str, str]:
    return {c.name: c.status for c in doctor(config_of(config), **kwargs).checks}


def csv_config(tmp_path, rows: list[tuple[float, float, str]]) -> str:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    return f"name: csv\nseed: 0\ndata: {{type: csv, path: {path}, label_column: label}}\nmodel: {{type: knn, k: 1}}\n"


def test_a_sound_network_config_passes_every_check():
    found = statuses(SOUND)
    assert set(found) == {"class_balance", "constant_features", "duplicates", "initial_loss", "gradients",
                          "overfit_20", "regularization", "finite", "learning_rate"}
    assert set(found.values()) == {"ok"}, found


def test_huge_initial_weights_fail_the_initial_loss_check():
    report = doctor(config_of(MLP % ", init: {scheme: small, scale: 30}" + TRAIN % ("momentum", 0.05)))
    check = next(c for c in report.checks if c.name == "initial_loss")
    assert check.status == "fail" and check.value > 3 * np.log(3) and "ln(3)" in check.message


def test_a_wrong_backward_pass_fails_the_gradient_check(monkeypatch):
    # no valid config has wrong gradients: plant a bug in tanh's backward (its derivative without the square)
    monkeypatch.setattr(Tanh, "backward", lambda self, dy: dy * (1 - self.cache))
    assert statuses(SOUND)["gradients"] == "fail"


def test_a_linear_model_on_xor_cannot_overfit_20_samples():
    config = ("name: xor\nseed: 0\ndata: {type: xor, noise: 0.05}\nmodel: {type: softmax}\n"
              + TRAIN % ("adam", 0.05))
    found = statuses(config)
    assert found["overfit_20"] == "fail" and found["gradients"] == "ok"
    assert found["learning_rate"] == "warn"  # the weights move, the loss cannot fall: not the rate's fault


def test_zero_initial_weights_leave_nothing_for_the_penalty():
    found = statuses(MLP % ", init: {scheme: zeros}" + TRAIN % ("momentum", 0.05))
    assert found["regularization"] == "fail"


def test_a_diverging_learning_rate_fails_finite_and_learning_rate():
    found = statuses(SOUND.replace("tanh", "relu"), overrides={"train.optimizer.lr": 1e6})
    assert found["finite"] == "fail" and found["learning_rate"] == "fail"
    assert found["gradients"] == "ok"


def test_a_learning_rate_orders_of_magnitude_too_small_fails_only_the_rate_checks():
    found = statuses(MLP % "" + TRAIN % ("sgd", 1e-7))
    assert found["learning_rate"] == "fail" and found["finite"] == "ok"


def test_an_imbalanced_csv_fails_class_balance(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(rng.normal(), rng.normal(), "a") for _ in range(190)] + [(rng.normal(), rng.normal(), "b")
                                                                     for _ in range(10)]
    found = statuses(csv_config(tmp_path, rows))
    assert found == {"class_balance": "fail", "constant_features": "ok", "duplicates": "ok"}


def test_constant_columns_fail_constant_features(tmp_path):
    rows = [(1.0, 2.0, "ab"[i % 2]) for i in range(60)]
    assert statuses(csv_config(tmp_path, rows))["constant_features"] == "fail"


def test_rows_repeated_across_the_split_fail_duplicates(tmp_path):
    rng = np.random.default_rng(1)
    rows = [(round(rng.normal(), 6), round(rng.normal(), 6), "ab"[i % 2]) for i in range(50)] * 2
    report = doctor(config_of(csv_config(tmp_path, rows)))
    check = next(c for c in report.checks if c.name == "duplicates")
    assert check.status == "fail" and check.value > 0 and "test" in check.message


def test_cli_exits_0_on_the_quickstart_and_1_with_json_when_a_check_fails(cli):
    result = cli("doctor", CONFIGS / "quickstart.yaml")
    assert result.exit_code == 0, result.stderr
    assert "overfit_20" in result.stdout and "no check failed" in result.stdout
    failing = cli("doctor", CONFIGS / "quickstart.yaml", "--set", "train.optimizer.lr=1e6", "--json")
    assert failing.exit_code == 1, failing.stderr
    report = json.loads(failing.stdout)
    assert report["failed"] is True and report["model"] == "mlp"
    assert {c["name"]: c["status"] for c in report["checks"]}["finite"] == "fail"
    assert all(set(c) == {"name", "status", "message", "value"} for c in report["checks"])


def test_cli_help_says_what_the_exit_codes_mean():
    result = invoke("doctor", "--help")
    assert result.exit_code == 0 and "Exit 0 when no check failed" in " ".join(result.stdout.split())


@pytest.mark.parametrize("name", ["knn", "linear_regression"])
def test_classical_and_regression_configs_get_the_checks_that_apply(name):
    found = statuses(CONFIGS / f"{name}.yaml")
    assert "duplicates" in found and "fail" not in found.values()
    assert ("gradients" in found) == (name == "linear_regression")
    assert ("class_balance" in found) == (name == "knn")
