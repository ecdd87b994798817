"""`mlcli gradcheck` is trustworthy: it passes on every shipped network config, fails on a wrong backward, and
reports the coordinates that sit on a kink (ReLU at 0, max-pool tie) instead of failing on them.

Float64 throughout; the config checks use a small batch and a sample of coordinates per array to stay fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mlcli.config.load import load_config
from mlcli.nn.activations import ReLU
from mlcli.nn.conv import Conv2d
from mlcli.nn.gradcheck import gradcheck_network, numerical_gradient, rel_error
from mlcli.nn.layers import Flatten, Linear
from mlcli.nn.losses import mean_squared_error
from mlcli.nn.network import Sequential
from mlcli.nn.pooling import MaxPool2d
from mlcli.workflows.gradcheck import check_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
TOL = 1e-6
F64 = np.float64


def _network_configs() -> list[str]:
    return sorted(path.name for path in CONFIGS.glob("*.yaml")
                  if not load_config(path, []).is_fitted_in_closed_form())


def _float64(name: str, *overrides: str):
    return load_config(CONFIGS / name, ["train.dtype=float64", *overrides])


def test_every_trainable_shipped_config_is_discovered() -> None:
    names = _network_configs()
    assert {"cnn_digits.yaml", "mlp.yaml", "softmax.yaml", "autoencoder.yaml", "newton.yaml"} <= set(names)
    assert not {"knn.yaml", "gaussian.yaml", "linear_regression_closed_form.yaml"} & set(names)


@pytest.mark.parametrize("name", _network_configs())
def test_gradcheck_passes_on_every_shipped_network_config(name: str) -> None:
    report = check_config(_float64(name), batch=4, base_dir=CONFIGS, max_coords=40)
    assert "input" in report and len(report) > 1
    failing = {k: v for k, v in report.items() if not v.passed(TOL)}
    assert not failing, failing
    assert all(v.checked > 0 for v in report.values()), report
    # A kink is rare after the jitter; most coordinates must really be compared.
    assert sum(v.kinks for v in report.values()) <= 0.05 * sum(v.checked for v in report.values()), report


def test_gradcheck_fails_exactly_the_weights_of_a_linear_whose_backward_is_wrong(monkeypatch) -> None:
    backward = Linear.backward

    def scaled(self, dy):
        dx = backward(self, dy)
        self.grads["W"] *= 1.01  # deliberately wrong by 1%
        return dx

    monkeypatch.setattr(Linear, "backward", scaled)
    report = check_config(_float64("mlp.yaml", "model.hidden=[16,8]"), batch=4, base_dir=CONFIGS, max_coords=40)
    failing = {name for name, check in report.items() if not check.passed(TOL)}
    assert failing == {name for name in report if name.endswith(".linear.W")}, report
    assert all(report[name].error > 1e-3 for name in failing)


def test_gradcheck_command_exits_1_when_a_conv_weight_gradient_is_wrong(cli, monkeypatch) -> None:
    backward = Conv2d.backward

    def perturbed(self, dy):
        dx = backward(self, dy)
        self.grads["W"].reshape(-1)[::7] += 1e-3 * np.abs(self.grads["W"]).max()  # a few entries off
        return dx

    monkeypatch.setattr(Conv2d, "backward", perturbed)
    result = cli("gradcheck", CONFIGS / "cnn_digits.yaml", "--batch", "2", "--coords", "60")
    assert result.exit_code == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert {name for name, row in rows.items() if row["ok"] == "NO"} == {"0.conv.W", "3.conv.W", "7.conv.W"}, rows


def _relu_net_with_a_unit_on_its_kink() -> tuple[Sequential, np.ndarray, np.ndarray]:
    """Linear(2, 3) -> ReLU -> Linear(3, 2) where hidden unit 0 of sample 0 has pre-activation exactly 0."""
    rng = np.random.default_rng(0)
    net = Sequential([Linear(2, 3, rng=rng, dtype=F64), ReLU(), Linear(3, 2, rng=rng, dtype=F64)])
    x = rng.standard_normal((3, 2))
    x[0] = [0.5, 0.75]
    first = net.layers[0].params
    first["W"][0] = [1.0, 2.0]
    first["b"][0] = -2.0  # 0.5 * 1 + 0.75 * 2 - 2 == 0 exactly in binary floating point
    y = rng.standard_normal((3, 2))
    assert (x @ first["W"].T + first["b"])[0, 0] == 0.0
    return net, x, y


def test_a_relu_unit_exactly_on_its_kink_is_reported_not_failed() -> None:
    net, x, y = _relu_net_with_a_unit_on_its_kink()
    report = gradcheck_network(net, mean_squared_error, x, y)
    # Sample 0's two inputs and unit 0's weights and bias all move the unit across 0 under any step.
    assert report["input"].kinks == 2 and report["0.linear.W"].kinks == 2 and report["0.linear.b"].kinks == 1
    assert report["2.linear.W"].kinks == 0  # the second Linear is after the ReLU: it does not move the unit
    assert all(check.passed(TOL) for check in report.values()), report
    assert report["0.linear.W"].checked == 4 and report["input"].checked == 4

    # Without the exclusion, central differences across the kink disagree with the (correct) backward.
    _, dout = mean_squared_error(net.forward(x, train=True), y)
    net.backward(dout)
    analytic = net.grads()["0.linear.b"].copy()
    b = net.params()["0.linear.b"]
    naive = numerical_gradient(lambda: mean_squared_error(net.forward(x, train=True), y)[0], b)
    assert rel_error(analytic, naive) > 1e-3


def test_a_kink_within_the_step_is_crossed_with_a_smaller_step_instead() -> None:
    net, x, y = _relu_net_with_a_unit_on_its_kink()
    net.layers[0].params["b"][0] += 3e-6  # the kink is now 3e-6 away: crossed by h = 1e-5, not by h / 10
    report = gradcheck_network(net, mean_squared_error, x, y)
    assert report["0.linear.b"].kinks == 0 and report["0.linear.b"].refined == 1
    assert all(check.passed(TOL) for check in report.values()), report


def test_a_max_pool_tie_is_reported_as_a_kink() -> None:
    rng = np.random.default_rng(1)
    net = Sequential([MaxPool2d(2), Flatten(), Linear(4, 2, rng=rng, dtype=F64)])
    x = rng.standard_normal((1, 1, 4, 4))
    x[0, 0, 0, 0] = x[0, 0, 0, 1] = 5.0  # a tie for the maximum of the first window
    report = gradcheck_network(net, mean_squared_error, x, rng.standard_normal((1, 2)))
    assert report["input"].kinks == 2 and report["input"].checked == 14
    assert all(check.passed(TOL) for check in report.values()), report


def test_the_jitter_is_seeded_so_the_same_config_gives_the_same_report() -> None:
    cfg = _float64("cnn_digits.yaml")
    first = check_config(cfg, batch=2, base_dir=CONFIGS, max_coords=15)
    assert check_config(cfg, batch=2, base_dir=CONFIGS, max_coords=15) == first


def _rows(stdout: str) -> dict[str, dict[str, str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 6 and re.fullmatch(r"\S+e[-+]\d+", cells[2]):
            rows[cells[0]] = dict(zip(["name", "shape", "error", "checked", "kinks", "ok"], cells, strict=True))
    return rows


def test_gradcheck_command_passes_on_the_shipped_cnn_config(cli) -> None:
    result = cli("gradcheck", CONFIGS / "cnn_digits.yaml")
    assert result.exit_code == 0, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert len(rows) == 11 and {"input", "0.conv.W", "7.conv.W", "12.linear.W"} <= set(rows)
    assert all(row["ok"] == "yes" and float(row["error"]) < TOL for row in rows.values()), rows
    assert all(int(row["kinks"]) <= int(row["checked"]) // 10 for row in rows.values()), rows
