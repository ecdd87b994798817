"""`mlcli summary --explain`: the explained equations, executed as written, do what the optimizer, the penalty and
the schedule compute (so the text cannot drift from the code)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from conftest import CONFIGS

from mlcli.config.load import load_config_text
from mlcli.insight.explain import explain_config
from mlcli.optim.registry import make_optimizer
from mlcli.optim.regularizers import add_penalty_grads
from mlcli.optim.schedules import make_schedule

BASE = "data: {type: iris}\nmodel: {type: mlp, hidden: [4]}\ntrain:\n  epochs: 12\n"
NAMES = {"sqrt": np.sqrt, "sign": np.sign, "cos": math.cos, "pi": math.pi, "floor": math.floor}


def equations(train_yaml: str) -> dict[str, str]:
    cfg = load_config_text(BASE + train_yaml, "c.yaml")
    return dict(explain_config(cfg, n_classes=3))


def python_of(expr: str) -> str:
    """Our notation as Python: `0.9 v` and `pi e` are products, `^` a power, `dL/dw` the gradient `grad`."""
    expr = expr.replace("dL/dw", "grad").replace("^", "**").replace("pi ", "pi * ")
    return re.sub(r"(\d|\))\s+([A-Za-z_(])", r"\1 * \2", expr)


def run(statements: str, env: dict) -> None:
    """Execute `a <- expr;  b = expr` statements (a trailing `(comment)` or `for ...` dropped) in `env`."""
    statements = re.split(r"\s{3}", statements)[0]
    for statement in statements.split(";"):
        target, expr = re.split(r"\s*(?:<-|=)\s*", statement.strip(), maxsplit=1)
        env[target] = eval(python_of(expr), {"__builtins__": {}, **NAMES}, env)


OPTIMIZERS = [
    "{type: sgd, lr: 0.05}",
    "{type: momentum, lr: 0.05, momentum: 0.9}",
    "{type: nesterov, lr: 0.02, momentum: 0.8}",
    "{type: adagrad, lr: 0.1, eps: 1.0e-6}",
    "{type: rmsprop, lr: 0.003, beta: 0.95}",
    "{type: rmsprop, lr: 0.003, beta: 0.9, momentum: 0.5}",
    "{type: adam, lr: 0.001, beta1: 0.8, beta2: 0.99}",
    "{type: adam, lr: 0.01, bias_correction: false}",
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_explained_update_rule_executed_as_written_equals_the_optimizer(optimizer):
    rule = equations(f"  optimizer: {optimizer}\n")["update"]
    cfg = load_config_text(BASE + f"  optimizer: {optimizer}\n", "c.yaml").train.optimizer
    opt = make_optimizer(cfg.type, **cfg.model_dump(exclude={"type"}))
    rng = np.random.default_rng(0)
    w = rng.standard_normal(6)
    env = {"w": w.copy(), "v": np.zeros(6), "a": np.zeros(6), "m": np.zeros(6)}
    params = {"w": w.copy()}
    for t in range(1, 4):
        g = rng.standard_normal(6)
        opt.step(params, {"w": g.copy()})
        env.update(g=g, t=t)
        run(rule, env)
        np.testing.assert_allclose(env["w"], params["w"], rtol=1e-12, atol=1e-15)


def test_the_explained_gradient_adds_the_penalty_as_the_trainer_does():
    text = equations("  regularization: {l2: 0.001, l1: 0.0001}\n")
    assert "0.001 / 2 * sum(w^2) + 0.0001 * sum(|w|)" in text["penalty"]
    w, grad = np.array([0.5, -2.0, 0.0]), np.array([0.1, 0.2, 0.3])
    expected = {"0.linear.W": grad.copy()}
    add_penalty_grads({"0.linear.W": w}, expected, l1=1e-4, l2=1e-3)
    env = {"w": w, "grad": grad}
    run(text["gradient"], env)
    np.testing.assert_allclose(env["g"], expected["0.linear.W"])


SCHEDULES = [
    "{type: constant}",
    "{type: constant, warmup_epochs: 2}",
    "{type: step, step_size: 4, gamma: 0.5}",
    "{type: exponential, gamma: 0.9, warmup_epochs: 3}",
    "{type: cosine}",
    "{type: cosine, min_lr: 0.001, warmup_epochs: 2}",
]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_the_explained_schedule_gives_the_rate_of_every_epoch(schedule):
    text = equations(f"  optimizer: {{type: sgd, lr: 0.05}}\n  schedule: {schedule}\n")["schedule"]
    sched = load_config_text(BASE + f"  schedule: {schedule}\n", "c.yaml").train.schedule
    expected = make_schedule(sched.type, base_lr=0.05, epochs=12, **sched.model_dump(exclude={"type"}))
    covered = []
    for piece in text.split("; then "):
        first, last = map(int, re.search(r"e = (\d+) \.\. (\d+)", piece).groups())
        for e in range(first, last + 1):
            env = {"e": e}
            run(piece, env)
            assert env["lr_e"] == pytest.approx(expected(e), rel=1e-12), (piece, e)
            covered.append(e)
    assert covered == list(range(12))


def test_a_varying_rate_is_named_lr_e_in_the_rule_and_a_constant_one_is_substituted():
    assert "v <- 0.9 v - lr_e * g" in equations("  optimizer: {type: momentum, lr: 0.05}\n  schedule: {type: cosine}\n"
                                                )["update"]
    assert "w <- w - 0.05 * g" in equations("  optimizer: {type: sgd, lr: 0.05}\n")["update"]


def test_label_smoothing_clipping_and_newton_are_explained_with_their_numbers():
    text = equations("  optimizer: {type: sgd, lr: 0.1}\n  grad_clip: {max_norm: 2.5}\nloss: "
                     "{type: softmax_cross_entropy, label_smoothing: 0.1}\n")
    assert "0.9 for the true class" in text["loss"] and "0.1 / 2 = 0.05" in text["loss"]
    assert "if ||g|| > 2.5: g <- g * 2.5 / ||g||" in text["clip"]
    newton = load_config_text("data: {type: iris}\nmodel: {type: softmax}\ntrain: {epochs: 3, optimizer: "
                              "{type: newton, damping: 0.001}, regularization: {l2: 0.01}}\n", "n.yaml")
    assert "(H + 0.001 I)^-1 grad" in dict(explain_config(newton))["update"]


def test_summary_explain_prints_the_quickstart_equations_and_json(cli):
    result = cli("summary", "--explain", CONFIGS / "quickstart.yaml")
    assert result.exit_code == 0, result.stderr
    for fragment in ("v <- 0.9 v - lr_e * g;  w <- w + v", "lr_e = 0.05 * (1 + cos(pi e / 30)) / 2",
                     "g <- dL/dw + 0.0001 * w", "q_c = 0.05 / 9"):
        assert " ".join(fragment.split()) in " ".join(result.stdout.split()), fragment
    report = json.loads(cli("summary", "--explain", CONFIGS / "knn.yaml", "--json").stdout)
    assert report["model"] == "knn" and "k = 3 nearest" in report["equations"][0]["equation"]
