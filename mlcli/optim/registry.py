"""The registry of optimizers: config `train.optimizer.type` -> class, and the factory that validates arguments.

    opt = make_optimizer("adam", lr=1e-3, beta1=0.9)

The keys equal the `type` literals of the optimizer union in `mlcli.config.train_schema`; a test checks it. Adding
an optimizer: its class (in `optimizers.py`, with `type` and `slot_names`), one line here, its config section.
The checkpoint format derives the state arrays it accepts from `slot_names`.
"""

from __future__ import annotations

import inspect
from typing import Any

from mlcli.optim.newton import Newton
from mlcli.optim.optimizers import SGD, Adagrad, Adam, Momentum, Nesterov, Optimizer, RMSProp

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": Adagrad,
    "rmsprop": RMSProp,
    "adam": Adam,
    "newton": Newton,
}


def make_optimizer(type: str, **hyper: Any) -> Optimizer:
    """Build the optimizer registered as `type` (a key of OPTIMIZERS) with hyperparameters `hyper` (lr, ...)."""
    cls = OPTIMIZERS.get(type)
    if cls is None:
        raise ValueError(f"optimizer type must be one of {', '.join(OPTIMIZERS)}; got {type!r}")
    accepted = [p for p in inspect.signature(cls).parameters]
    unknown = sorted(set(hyper) - set(accepted))
    if unknown:
        raise ValueError(f"optimizer {type!r} got unknown hyperparameter(s) {unknown}; accepted: {accepted}")
    if "lr" in accepted and "lr" not in hyper:
        raise ValueError(f"optimizer {type!r} needs lr")
    return cls(**hyper)
