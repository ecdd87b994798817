"""Optimization: update rules, learning-rate schedules and weight penalties. Imports only NumPy.

- `optimizers`:   SGD, Momentum, Nesterov, Adagrad, RMSProp (optionally with momentum), Adam; `OPTIMIZERS`
                  registry and `make_optimizer(type, **hyper)`. `opt.step(params, grads)` updates in place,
                  state is keyed by parameter name, `state_dict()`/`load_state_dict()` resume exactly.
- `schedules`:    `make_schedule(type, base_lr=, epochs=, **opts)` -> `schedule(epoch) -> lr`; `SCHEDULES`.
- `regularizers`: L1/L2 `penalty` and `add_penalty_grads` (weights only unless `include_bias`),
                  `clip_grad_norm` by global norm.

A training step: `backward` -> `add_penalty_grads` -> `clip_grad_norm` (optional) -> `opt.step`; once per epoch
`opt.lr = schedule(epoch)`.
"""

from mlcli.optim.optimizers import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    Momentum,
    Nesterov,
    Optimizer,
    RMSProp,
    make_optimizer,
)
from mlcli.optim.regularizers import add_penalty_grads, clip_grad_norm, is_penalized, penalty
from mlcli.optim.schedules import SCHEDULES, Schedule, make_schedule

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adagrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSProp",
    "Schedule",
    "add_penalty_grads",
    "clip_grad_norm",
    "is_penalized",
    "make_optimizer",
    "make_schedule",
    "penalty",
]
