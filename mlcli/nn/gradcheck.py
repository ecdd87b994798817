"""Numerical gradient checking: the two helpers of the cs231n kit, and checks of a layer or a whole network.

`numerical_gradient(f, x)` differentiates a scalar function by central differences, perturbing `x` in place;
`rel_error(a, b)` compares an analytic and a numerical gradient. `check_layer` runs both against a layer's
`backward`; `gradcheck_network` against a whole network's, and reports per parameter a `GradCheck`:

    gradcheck_network(net, loss_fn, x, y) -> {"input": GradCheck(shape=(8, 64), error=3e-10, checked=512, kinks=0),
                                              "0.linear.W": GradCheck(...), ...}

Kinks. Central differences are only valid where the loss is differentiable on the whole segment [x - h, x + h].
ReLU-like layers are not at input 0, max pooling is not where a window's maximum changes hands (ties, frequent
on images with flat regions). A coordinate whose +h and -h forward passes put some kinked layer on different
sides of its kink (a ReLU input changing sign, a pooling argmax changing) crossed a non-differentiable point, as
cs231n's notes describe, and its difference quotient is meaningless. It is retried with the step h/10 (counted
in `GradCheck.refined` when that no longer crosses); if that crosses too, the point sits on the kink and the
coordinate is left out of the comparison and counted in `GradCheck.kinks`. The detection reads forward passes
only, never the analytic gradient, so a wrong backward cannot hide behind it. `KINK_STATES` maps each kinked
layer kind to the function that reads which side of its kinks it is on.

Below about 1e-6 in float64 the backward pass is right. These helpers back the parametrized gradient tests and
the `mlcli gradcheck` command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from mlcli.nn.base import Layer
from mlcli.nn.network import Sequential


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-based relative error `||a - b|| / max(||a|| + ||b||, 1e-8)`.

    Why norms and not the element-wise `max |a - b| / (|a| + |b|)`: at a ReLU kink, or wherever one entry of
    the gradient is (nearly) zero, the element-wise ratio of two tiny numbers is noise close to 1 and fails a
    correct backward pass; the norm ratio weighs each entry by its size. The floor makes the measure absolute
    for gradients that are zero in truth (a bias right before batchnorm): there both sides are rounding noise
    of about 1e-11, and a ratio of two noises would read as a failure.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-8))


def _flat_view(x: np.ndarray) -> np.ndarray:
    flat_x = x.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs a contiguous array to perturb in place")
    return flat_x


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences `df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)` of a scalar `f()` that reads `x`.

    `x` is perturbed in place one entry at a time and restored; it must be a float64 array that `f` uses
    (an input it closes over, or a layer parameter). Returns an array of x's shape. Costs `2 * x.size` calls.
    """
    grad = np.zeros_like(x)
    flat_x = _flat_view(x)
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        f_plus = f()
        flat_x[i] = old - h
        f_minus = f()
        flat_x[i] = old
        flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def _require_float64(arrays: dict[str, np.ndarray], where: str) -> None:
    wrong = [name for name, a in arrays.items() if a.dtype != np.float64]
    if wrong:
        raise ValueError(f"gradient checks run in float64; {where} has {', '.join(wrong)} in another dtype "
                         f"(build it with dtype=np.float64)")


def check_layer(layer: Layer, x: np.ndarray, rng: np.random.Generator, *, train: bool = True) -> dict[str, float]:
    """Relative errors of `layer.backward` against numerical gradients, in float64 (training mode unless
    `train=False`, e.g. batchnorm with its running statistics).

    The layer's output is contracted with a random upstream gradient `dy` (from `rng`) into the scalar
    `f = sum(forward(x) * dy)`, whose gradient is exactly what `backward(dy)` returns. A layer holding a
    generator in `rng` (dropout) has its state restored before every forward, so the mask stays fixed.
    Returns `{"x": err, <param name>: err, ...}`. The layer's params must be float64. No kink detection: place
    `x` away from the layer's kinks.
    """
    _require_float64(layer.params, f"layer {layer.kind}")
    x = np.array(x, dtype=np.float64)
    generator = getattr(layer, "rng", None)
    state = generator.bit_generator.state if isinstance(generator, np.random.Generator) else None

    def forward() -> np.ndarray:
        if state is not None:
            generator.bit_generator.state = state
        return layer.forward(x, train=train)

    y = forward()
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    analytic = {"x": dx, **{name: g.copy() for name, g in layer.grads.items()}}

    def f() -> float:
        return float(np.sum(forward() * dy))

    errors = {"x": rel_error(analytic["x"], numerical_gradient(f, x))}
    for name, p in layer.params.items():
        errors[name] = rel_error(analytic[name], numerical_gradient(f, p))
    return errors


# Which side of its kinks a layer's last forward was on, from its input `x` (and the layer after that forward).
# Two forward passes with equal states went through the same linear piece of the layer.
KINK_STATES: dict[str, Callable[[Layer, np.ndarray], tuple[np.ndarray, ...]]] = {
    "relu": lambda layer, x: (x > 0,),
    "leaky_relu": lambda layer, x: (x > 0,),
    "prelu": lambda layer, x: (x > 0,),
    "elu": lambda layer, x: (x > 0,),  # the slope jumps from alpha to 1 unless alpha == 1
    # The cache starts with the window-argmax offsets (column in each row, then row) or, on the 2x2 gather path,
    # with the flat index of each window's maximum and x's shape; see nn/pooling.py.
    "maxpool": lambda layer, x: tuple(layer.cache[:2]),
}


class GradCheck(NamedTuple):
    """One array's check: its shape, the relative error over the coordinates compared, how many were compared
    (`checked`), how many were left out because a kink lay within h/10 of the point (`kinks`), and how many of
    the compared ones had a kink between h/10 and h and were compared with the step h/10 (`refined`).
    `passed(tol)` needs at least one coordinate compared: an array whose every coordinate sits on a kink proves
    nothing."""

    shape: tuple[int, ...]
    error: float
    checked: int
    kinks: int
    refined: int = 0

    def passed(self, tol: float = 1e-6) -> bool:
        return self.error <= tol and (self.checked > 0 or self.kinks == 0)


def _kinked_forward(layers: list[Layer], x: np.ndarray, states: list, inputs: list | None = None) -> np.ndarray:
    """Run `layers` in order in training mode (as `Sequential.forward(x, train=True)`), appending to `states` the
    kink state of every kinked layer on the way, and to `inputs` (if given) a copy of every layer's input."""
    for layer in layers:
        if inputs is not None:
            inputs.append(x.copy())
        y = layer.forward(x, True)
        if layer.kind in KINK_STATES:
            states.extend(KINK_STATES[layer.kind](layer, x))
        x = y
    return x


def _compare(f: Callable[[], tuple[float, list]], x: np.ndarray, analytic: np.ndarray, coords: np.ndarray | None,
             h: float) -> GradCheck:
    """Central differences of `f` at the coordinates `coords` of `x` (all when None) against `analytic`.

    A coordinate whose +h and -h passes disagree on a kink state is retried with the step h/10 (a kink at a
    distance between h/10 and h from the point is then not crossed); if they still disagree, it is left out."""
    flat_x = _flat_view(x)
    flat_analytic = analytic.reshape(-1)
    indices = range(flat_x.size) if coords is None else coords
    kept, numeric, refined, kinks = [], [], 0, 0

    def central(i: int, step: float) -> tuple[float, bool]:
        old = flat_x[i]
        flat_x[i] = old + step
        f_plus, states_plus = f()
        flat_x[i] = old - step
        f_minus, states_minus = f()
        flat_x[i] = old
        smooth = all(np.array_equal(a, b) for a, b in zip(states_plus, states_minus, strict=True))
        return (f_plus - f_minus) / (2 * step), smooth

    for i in indices:
        derivative, smooth = central(i, h)
        if not smooth:
            derivative, smooth = central(i, h / 10)
            refined += smooth
            kinks += not smooth
        if smooth:
            kept.append(i)
            numeric.append(derivative)
    error = rel_error(flat_analytic[kept], np.array(numeric)) if kept else 0.0
    return GradCheck(tuple(x.shape), error, len(kept), kinks, refined)


def gradcheck_network(
    net: Sequential,
    loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    *,
    reset: Callable[[], None] | None = None,
    max_coords: int | None = None,
    rng: np.random.Generator | None = None,
    h: float = 1e-5,
) -> dict[str, GradCheck]:
    """Backpropagation through `net` and `loss_fn` against central differences, for the input and every named
    parameter, leaving out (and counting) the coordinates that cross a kink (see the module docstring).

    The scalar checked is `loss_fn(net.forward(x, train=True), y)[0]`; `reset()` (if given) runs before every
    forward, e.g. to re-seed dropout so that its mask is the same in every evaluation. A parameter's forwards
    rerun only its layer and those after it, from the input that layer got in the first forward. Every
    coordinate is checked unless `max_coords`: then an array with more entries has a random sample of
    `max_coords` of them checked (drawn from `rng`, default seed 0), as cs231n's `grad_check_sparse`. Costs 2
    forwards per coordinate, 4 for one near a kink.
    Returns `{"input": GradCheck, "0.linear.W": GradCheck, ...}`. The network's params must be float64.
    """
    _require_float64(net.params(), "the network")
    x = np.array(x, dtype=np.float64)
    rng = np.random.default_rng(0) if rng is None else rng
    if reset is not None:
        reset()
    inputs: list[np.ndarray] = []
    _, dout = loss_fn(_kinked_forward(net.layers, x, [], inputs), y)
    dx = net.backward(dout)
    analytic = {"input": dx, **{name: g.copy() for name, g in net.grads().items()}}

    def loss_from(start: int) -> Callable[[], tuple[float, list]]:
        """The loss and kink states with only `layers[start:]` rerun: perturbing a parameter of layer `start`
        leaves the layers before it, and their input `inputs[start]`, as they were."""
        layers, first_input = net.layers[start:], x if start == 0 else inputs[start]

        def f() -> tuple[float, list]:
            if reset is not None:
                reset()
            states: list = []
            return loss_fn(_kinked_forward(layers, first_input, states), y)[0], states

        return f

    layer_of = {id(p): i for i, layer in enumerate(net.layers) for p in layer.params.values()}
    report = {}
    for name, array in {"input": x, **net.params()}.items():
        coords = None
        if max_coords is not None and array.size > max_coords:
            coords = np.sort(rng.choice(array.size, size=max_coords, replace=False))
        report[name] = _compare(loss_from(layer_of.get(id(array), 0)), array, analytic[name], coords, h)
    return report


def check_network(
    net: Sequential,
    loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    *,
    reset: Callable[[], None] | None = None,
) -> dict[str, float]:
    """`gradcheck_network` over every coordinate, reduced to the relative errors:
    `{"input": err, "0.linear.W": err, ...}`."""
    return {name: check.error for name, check in gradcheck_network(net, loss_fn, x, y, reset=reset).items()}
