"""Activation layers (ReLU, LeakyReLU, PReLU, ELU, Sigmoid, Tanh, Softplus) and their registry.

Each class wraps a pair of `mlcli.nn.functional` and caches one array between forward and backward (ReLU its
output, LeakyReLU its mask), never both input and output. Every activation maps any shape to the same shape;
PReLU's learned slope broadcasts over axis 1, so it serves `(N, D)` and `(N, C, H, W)` batches alike.

`ACTIVATIONS` maps each `kind` to its class; `make_activation("leaky_relu", negative_slope=0.1)` builds one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlcli.nn import functional as F
from mlcli.nn.base import Layer


class ReLU(Layer):
    """`y = max(x, 0)`. Shape: any -> same. Gradient `dx = dy * [x > 0]`: 0 at exactly `x = 0`, as in PyTorch."""

    kind = "relu"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = F.relu_forward(x)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.relu_backward(dy, self.cache)


class LeakyReLU(Layer):
    """`y = x` for `x > 0`, else `negative_slope * x`. Shape: any -> same.

    Gradient: `dx = dy` for `x > 0`, `negative_slope * dy` for `x <= 0`: at exactly `x = 0`, where the function has
    no derivative, the slope is used, as PyTorch does. The default slope 0.01 is PyTorch's.
    """

    kind = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = F.leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.leaky_relu_backward(dy, self.cache)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class PReLU(Layer):
    """`y = x` for `x > 0`, else `alpha_c * x`, with the slope `alpha` learned (He et al., 2015).

    Shape: (N, C) or (N, C, H, W) -> same. Param `alpha` (num_parameters,), filled with `init`; one slope
    shared by all channels (`num_parameters=1`) or one per channel (`num_parameters=C`, broadcast over axis 1).
    The defaults (1 slope, 0.25) are PyTorch's.

    Gradients: `dx = dy` for `x > 0`, `alpha_c * dy` for `x <= 0` (at exactly `x = 0` the slope, as in PyTorch);
    `dalpha_c = sum of dy * x over the x <= 0 of channel c` (an `x = 0` adds 0).
    """

    kind = "prelu"

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: np.dtype | type = np.float32) -> None:
        super().__init__()
        if not isinstance(num_parameters, (int, np.integer)) or num_parameters < 1:
            raise ValueError(f"PReLU num_parameters must be a positive int; got {num_parameters!r}")
        self.num_parameters = int(num_parameters)
        self.dtype = np.dtype(dtype)
        self.params["alpha"] = np.full(self.num_parameters, init, dtype=self.dtype)
        self.grads["alpha"] = np.zeros(self.num_parameters, dtype=self.dtype)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if self.num_parameters > 1 and (x.ndim < 2 or x.shape[1] != self.num_parameters):
            raise ValueError(f"PReLU with {self.num_parameters} slopes expects {self.num_parameters} channels on "
                             f"axis 1; got input {x.shape}")
        y, self.cache = F.prelu_forward(x, self.params["alpha"])
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dalpha = F.prelu_backward(dy, self.cache)
        self.grads["alpha"][...] = dalpha
        return dx

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class ELU(Layer):
    """`y = x` for `x > 0`, else `alpha * (exp(x) - 1)`, alpha > 0. Shape: any -> same."""

    kind = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"ELU alpha must be > 0; got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = F.elu_forward(x, self.alpha)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.elu_backward(dy, self.cache)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Sigmoid(Layer):
    """`y = 1 / (1 + exp(-x))`, without overflow for any `x`. Shape: any -> same."""

    kind = "sigmoid"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = F.sigmoid_forward(x)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.sigmoid_backward(dy, self.cache)


class Tanh(Layer):
    """`y = tanh(x)`. Shape: any -> same."""

    kind = "tanh"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = F.tanh_forward(x)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.tanh_backward(dy, self.cache)


class Softplus(Layer):
    """`y = log(1 + exp(x))`, computed as `log1p(exp(-|x|)) + max(x, 0)`. Shape: any -> same."""

    kind = "softplus"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = F.softplus_forward(x)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.softplus_backward(dy, self.cache)


ACTIVATIONS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (ReLU, LeakyReLU, PReLU, ELU, Sigmoid, Tanh, Softplus)
}


def make_activation(name: str, **kwargs: Any) -> Layer:
    """Build the activation registered as `name` with its keyword hyperparameters, e.g.
    `make_activation("elu", alpha=0.5)`. Raises ValueError for an unknown name, listing the known ones.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name](**kwargs)
