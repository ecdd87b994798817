"""Gradient check of a configured network: analytic backprop vs central differences, in float64.

    check_config(cfg, batch=8) -> {"0.linear.W": ((64, 10), 3.1e-10), ..., "input": ((8, 64), ...)}

Dropout layers are re-seeded before every forward pass so that their mask is the same in every evaluation.
Regularization penalties are not part of this check: their gradient has its own test (tests/test_regularizers.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.errors import ConfigError
from mlcli.nn.gradcheck import check_network
from mlcli.train.run import setup


def check_config(cfg, *, batch: int = 8, base_dir: Path | None = None) -> dict[str, tuple[tuple, float]]:
    _gens, data, model = setup(cfg, base_dir)
    if not model.is_network:
        raise ConfigError(f"model.type {cfg.model.type} has no gradients to check (it is fitted in closed form)")
    n = min(batch, data.train.n)
    x, y = data.train.x[:n], data.train.y[:n]
    dropouts = [layer for layer in model.net.layers if layer.kind == "dropout"]

    def reset() -> None:
        for i, layer in enumerate(dropouts):
            layer.rng = np.random.default_rng(1234 + i)

    errors = check_network(model.net, model.loss_and_grad, x, model.target(x, y), reset=reset)
    shapes = {k: tuple(v.shape) for k, v in model.net.named_params().items()}
    shapes["input"] = tuple(x.shape)
    return {k: (shapes.get(k, ()), float(v)) for k, v in errors.items()}
