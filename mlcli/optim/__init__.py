"""Optimization: update rules, learning-rate schedules and weight penalties. Imports only NumPy.

- `optimizers`:   SGD, Momentum, Nesterov, Adagrad, RMSProp (optionally with momentum), Adam.
                  `opt.step(params, grads)` updates in place, state is keyed by parameter name,
                  `state_dict()`/`load_state_dict()` resume exactly.
- `newton`:       Newton's method for small models, behind the same `step(params, grads, closure)`.
- `registry`:     `OPTIMIZERS` (type -> class) and `make_optimizer(type, **hyper)`.
- `schedules`:    `make_schedule(type, base_lr=, epochs=, **opts)` -> `schedule(epoch) -> lr`; `SCHEDULES`.
- `regularizers`: L1/L2 `penalty` and `add_penalty_grads` (weights only unless `include_bias`),
                  `clip_grad_norm` by global norm.

A training step: `backward` -> `add_penalty_grads` -> `clip_grad_norm` (optional) -> `opt.step`; once per epoch
`opt.lr = schedule(epoch)`.
"""

from mlcli.optim.newton import Newton
from mlcli.optim.optimizers import SGD, Adagrad, Adam, Momentum, Nesterov, Optimizer, RMSProp
from mlcli.optim.registry import OPTIMIZERS, make_optimizer
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
    "Newton",
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
