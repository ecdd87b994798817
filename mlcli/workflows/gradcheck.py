"""Gradient check of a configured network: analytic backprop vs central differences, in float64.

    gradcheck("configs/mlp.yaml", batch=8)       # mlcli.gradcheck: a path, dict or Config, in float64
    check_config(cfg, batch=8) -> {"input": GradCheck(shape=(8, 64), error=8e-10, checked=512, kinks=0, refined=0),
                                   "0.linear.W": GradCheck(shape=(10, 64), error=3e-10, ...), ...}

Each `GradCheck` is a named tuple whose first two fields are the array's shape and its relative error, so
`shape, error, *_ = report[name]` reads it like the older `(shape, error)` pairs; `report[name].passed(tol)`
says whether the check passed, `.kinks` how many coordinates sat on a non-differentiable point and were left out
(see `mlcli.nn.gradcheck`).

The checked batch is the first `batch` training samples plus a seeded jitter of `jitter` times their standard
deviation (drawn from the config's seed, so the same config gives the same report). Real data has exact ties
(the digits' flat background): through max pooling a tie is a kink at distance 0 that no step size avoids, and
the jitter removes it without moving the point anywhere the gradient is not defined.
Dropout layers are re-seeded before every forward pass so that their mask is the same in every evaluation.
Regularization penalties are not part of this check: their gradient has its own test (tests/test_regularizers.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.errors import ConfigError
from mlcli.nn.gradcheck import GradCheck, gradcheck_network
from mlcli.workflows.build import override_items, resolve_config, setup


def gradcheck(config, *, overrides=None, batch: int = 8, max_coords: int | None = 200,
              jitter: float = 1e-2) -> dict[str, GradCheck]:
    """Check the network `config` describes (a path, dict or Config; computed in float64 whatever it says)."""
    cfg, base_dir = resolve_config(config, [*override_items(overrides), "train.dtype=float64"])
    return check_config(cfg, batch=batch, base_dir=base_dir, max_coords=max_coords, jitter=jitter)


def check_config(cfg, *, batch: int = 8, base_dir: Path | None = None, max_coords: int | None = None,
                 jitter: float = 1e-2) -> dict[str, GradCheck]:
    """Check the configured network on `batch` training samples; every coordinate of every array unless
    `max_coords` (then a seeded sample of that many per larger array). `cfg` must ask for float64."""
    _gens, data, model = setup(cfg, base_dir)
    if not model.is_network:
        raise ConfigError(f"model.type {cfg.model.type} has no gradients to check (it is fitted in closed form)")
    n = min(batch, data.train.n)
    x, y = np.array(data.train.x[:n], dtype=np.float64), data.train.y[:n]
    rng = np.random.default_rng(cfg.seed)
    x += jitter * (float(x.std()) or 1.0) * rng.standard_normal(x.shape)
    dropouts = [layer for layer in model.net.layers if layer.kind == "dropout"]

    def reset() -> None:
        for i, layer in enumerate(dropouts):
            layer.rng = np.random.default_rng(1234 + i)

    return gradcheck_network(model.net, model.loss_and_grad, x, model.target(x, y), reset=reset,
                             max_coords=max_coords, rng=rng)
