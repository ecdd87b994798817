"""Weight penalties (L1, L2) added to the loss and the gradient, and gradient clipping by global norm.

The trainer calls, after `backward` and before `optimizer.step`:

    loss += penalty(params, l1=l1, l2=l2)            # reported loss includes the penalty
    add_penalty_grads(params, grads, l1=l1, l2=l2)   # grads += l2 * w + l1 * sign(w), in place
    norm = clip_grad_norm(grads, max_norm)            # optional

Only weights are penalized by default: a parameter is a weight when the last component of its dotted name is `W`
(linear and conv weights, e.g. `"0.linear.W"`); biases `b`, batchnorm `gamma`/`beta` and PReLU `alpha` are exempt
unless `include_bias=True`, which penalizes every parameter. Definitions (DESIGN.md "Exact definitions"):
`penalty = l2 / 2 * sum(w**2) + l1 * sum(|w|)`, whose gradient is `l2 * w + l1 * sign(w)` (sign(0) = 0).
"""

from __future__ import annotations

import math

import numpy as np

WEIGHT_NAME = "W"


def _check_strengths(l1: float, l2: float) -> None:
    """Raise ValueError unless both penalty strengths are finite numbers >= 0."""
    for name, value in (("l1", l1), ("l2", l2)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be >= 0, got {value:g}")


def is_penalized(name: str, include_bias: bool = False) -> bool:
    """Whether the parameter called `name` (dotted, e.g. `"0.linear.W"`) is penalized.

    True for weights (last dotted component `W`); for every parameter when `include_bias` is True.
    """
    return include_bias or name.rsplit(".", 1)[-1] == WEIGHT_NAME


def penalty(
    params: dict[str, np.ndarray], *, l1: float = 0.0, l2: float = 0.0, include_bias: bool = False
) -> float:
    """`l2 / 2 * sum(w**2) + l1 * sum(|w|)` summed over the penalized arrays of `params` (any shapes)."""
    _check_strengths(l1, l2)
    total = 0.0
    for name, w in params.items():
        if not is_penalized(name, include_bias):
            continue
        flat = w.reshape(-1)
        if l2:
            total += 0.5 * l2 * float(np.dot(flat, flat))
        if l1:
            total += l1 * float(np.abs(flat).sum())
    return total


def add_penalty_grads(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    include_bias: bool = False,
) -> None:
    """Add the penalty's gradient `l2 * w + l1 * sign(w)` to `grads[name]` in place, for penalized names."""
    _check_strengths(l1, l2)
    if not (l1 or l2):
        return
    for name, w in params.items():
        if not is_penalized(name, include_bias):
            continue
        g = grads[name]
        if l2:
            g += l2 * w
        if l1:
            g += l1 * np.sign(w)


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient in place by `max_norm / norm` when the global norm exceeds `max_norm`.

    `norm = sqrt(sum over all arrays of sum(g**2))`, the L2 norm of all gradients as one vector. Returns the norm
    before clipping. A non-finite norm (NaN/inf) leaves the gradients untouched so the caller can report the
    divergence.
    """
    if not (math.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"max_norm must be > 0, got {max_norm:g}")
    squares = 0.0
    for g in grads.values():
        flat = g.reshape(-1)
        squares += float(np.dot(flat, flat))
    norm = math.sqrt(squares)
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm
