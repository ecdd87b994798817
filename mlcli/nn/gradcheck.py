"""Numerical gradient checking: the two helpers of the cs231n kit, and checks of a layer or a whole network.

`numerical_gradient(f, x)` differentiates a scalar function by central differences, perturbing `x` in place;
`rel_error(a, b)` compares an analytic and a numerical gradient. `check_layer` and `check_network` run both
against `backward` and report one relative error per input and parameter; below about 1e-6 in float64 the
backward pass is right. They back the parametrized gradient tests and the `mlcli gradcheck` command.
"""

from __future__ import annotations

from collections.abc import Callable

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


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences `df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)` of a scalar `f()` that reads `x`.

    `x` is perturbed in place one entry at a time and restored; it must be a float64 array that `f` uses
    (an input it closes over, or a layer parameter). Returns an array of x's shape. Costs `2 * x.size` calls.
    """
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs a contiguous array to perturb in place")
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
    Returns `{"x": err, <param name>: err, ...}`. The layer's params must be float64.
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


def check_network(
    net: Sequential,
    loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    *,
    reset: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Relative error of backpropagation through `net` and `loss_fn` for every named parameter and the input.

    The scalar checked is `loss_fn(net.forward(x, train=True), y)[0]`; `reset()` (if given) runs before every
    forward, e.g. to re-seed dropout so that its mask is the same in every evaluation. Returns
    `{"input": err, "0.linear.W": err, ...}`. The network's params must be float64.
    """
    _require_float64(net.named_params(), "the network")
    x = np.array(x, dtype=np.float64)

    def loss_and_grad() -> tuple[float, np.ndarray]:
        if reset is not None:
            reset()
        return loss_fn(net.forward(x, train=True), y)

    _, dout = loss_and_grad()
    dx = net.backward(dout)
    analytic = {name: g.copy() for name, g in net.named_grads().items()}

    def f() -> float:
        return loss_and_grad()[0]

    errors = {"input": rel_error(dx, numerical_gradient(f, x))}
    for name, p in net.named_params().items():
        errors[name] = rel_error(analytic[name], numerical_gradient(f, p))
    return errors
