"""Learning-rate schedules: functions from a 0-based epoch to the learning rate of that epoch.

    schedule = make_schedule("cosine", base_lr=0.1, epochs=50, min_lr=1e-4, warmup_epochs=5)
    for epoch in range(50):
        optimizer.lr = schedule(epoch)

Types (SCHEDULES), with `e` the epoch counted from the end of warmup and `base` = `base_lr`:

- `constant`:        `base`
- `step`:            `base * gamma ** (e // step_size)`                      (step_size, gamma=0.1)
- `exponential`:     `base * gamma ** e`                                       (gamma)
- `cosine`:          `min + (base - min) * (1 + cos(pi * e / T)) / 2`, T = epochs - warmup_epochs; `min` once
                     e >= T                                                    (min_lr=0.0)
- `cosine_restarts`: SGDR (Loshchilov & Hutter): the cosine above restarted at `base` after cycles of length
                     `t0, t0 * t_mult, t0 * t_mult**2, ...`                    (t0, t_mult=1, min_lr=0.0)

Every type takes `warmup_epochs` (default 0): for epoch `< warmup_epochs` the rate ramps linearly as
`base * (epoch + 1) / (warmup_epochs + 1)`, then the schedule starts at its epoch 0. Options are validated once
here (ValueError naming the option, what was expected and what was found).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Schedule = Callable[[int], float]


def _int_opt(schedule: str, name: str, value: Any, low: int) -> int:
    """Return `value` if it is an int >= low, else raise ValueError naming the schedule and option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{schedule} schedule: {name} must be an int >= {low}, got {value!r}")
    return value


def _float_opt(
    schedule: str, name: str, value: Any, low: float, high: float | None = None, *, low_open: bool
) -> float:
    """Return `value` as a finite float in (low, high] ([low, high] unless low_open; no upper bound if None)."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    ok_low = number > low if low_open else number >= low
    if not (math.isfinite(number) and ok_low and (high is None or number <= high)):
        if high is None:
            expected = f"{'>' if low_open else '>='} {low:g}"
        else:
            expected = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{schedule} schedule: {name} must be a number {expected}, got {value!r}")
    return float(number)


def _constant(base: float, epochs: int) -> Schedule:
    return lambda e: base


def _step(base: float, epochs: int, step_size: int, gamma: float = 0.1) -> Schedule:
    step_size = _int_opt("step", "step_size", step_size, 1)
    gamma = _float_opt("step", "gamma", gamma, 0.0, 1.0, low_open=True)
    return lambda e: base * gamma ** (e // step_size)


def _exponential(base: float, epochs: int, gamma: float) -> Schedule:
    gamma = _float_opt("exponential", "gamma", gamma, 0.0, 1.0, low_open=True)
    return lambda e: base * gamma**e


def _cosine_value(base: float, min_lr: float, e: int, period: int) -> float:
    """`min_lr + (base - min_lr) * (1 + cos(pi * e / period)) / 2`: base at e = 0, min_lr at e = period."""
    return min_lr + (base - min_lr) * (1.0 + math.cos(math.pi * e / period)) / 2.0


def _cosine(base: float, epochs: int, min_lr: float = 0.0) -> Schedule:
    min_lr = _float_opt("cosine", "min_lr", min_lr, 0.0, base, low_open=False)
    return lambda e: _cosine_value(base, min_lr, e, epochs) if e < epochs else min_lr


def _cosine_restarts(base: float, epochs: int, t0: int, t_mult: int = 1, min_lr: float = 0.0) -> Schedule:
    t0 = _int_opt("cosine_restarts", "t0", t0, 1)
    t_mult = _int_opt("cosine_restarts", "t_mult", t_mult, 1)
    min_lr = _float_opt("cosine_restarts", "min_lr", min_lr, 0.0, base, low_open=False)

    def schedule(e: int) -> float:
        period = t0
        if t_mult == 1:
            e %= t0
        while e >= period:  # walk past whole cycles of growing length: O(log e) iterations
            e -= period
            period *= t_mult
        return _cosine_value(base, min_lr, e, period)

    return schedule


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": _constant,
    "step": _step,
    "exponential": _exponential,
    "cosine": _cosine,
    "cosine_restarts": _cosine_restarts,
}

_ACCEPTED = {
    "constant": (),
    "step": ("step_size", "gamma"),
    "exponential": ("gamma",),
    "cosine": ("min_lr",),
    "cosine_restarts": ("t0", "t_mult", "min_lr"),
}
_REQUIRED = {"step": ("step_size",), "exponential": ("gamma",), "cosine_restarts": ("t0",)}


def make_schedule(type: str, *, base_lr: float, epochs: int, warmup_epochs: int = 0, **opts: Any) -> Schedule:
    """Return `schedule(epoch) -> lr` for 0-based epochs of a run of `epochs` epochs (see the module docstring).

    `epochs` is the length of the run; `cosine` anneals over `epochs - warmup_epochs` epochs after warmup.
    """
    build = SCHEDULES.get(type)
    if build is None:
        raise ValueError(f"schedule type must be one of {', '.join(SCHEDULES)}; got {type!r}")
    base = _float_opt(type, "base_lr", base_lr, 0.0, low_open=True)
    epochs = _int_opt(type, "epochs", epochs, 1)
    warmup = _int_opt(type, "warmup_epochs", warmup_epochs, 0)
    if warmup >= epochs:
        raise ValueError(f"{type} schedule: warmup_epochs must be < epochs ({epochs}), got {warmup}")
    unknown = sorted(set(opts) - set(_ACCEPTED[type]))
    if unknown:
        accepted = ", ".join(("warmup_epochs", *_ACCEPTED[type]))
        raise ValueError(f"{type} schedule: unknown option(s) {unknown}; accepted: {accepted}")
    missing = [name for name in _REQUIRED.get(type, ()) if name not in opts]
    if missing:
        raise ValueError(f"{type} schedule: missing required option(s) {missing}")
    after_warmup = build(base, epochs - warmup, **opts)

    def schedule(epoch: int) -> float:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch < warmup:
            return base * (epoch + 1) / (warmup + 1)
        return float(after_warmup(epoch - warmup))

    return schedule
