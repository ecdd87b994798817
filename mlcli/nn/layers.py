"""The layers with parameters or structure: Linear, Dropout, BatchNorm1d, BatchNorm2d, Flatten.

Each class is a thin shell over a forward/backward pair of `mlcli.nn.functional`: `forward` stores the pair's
cache in `self.cache`, `backward` turns it into `dx` and writes parameter gradients into `self.grads`. Gradient
arrays are allocated once and overwritten by every backward, so a reference to `layer.grads[name]` stays valid.
Activations live in `activations.py`, convolutions in `conv.py`, pooling in `pooling.py`.
"""

from __future__ import annotations

import math

import numpy as np

from mlcli.nn import functional as F
from mlcli.nn.base import Layer
from mlcli.nn.init import init_weight


def _positive_int(value: int, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be a positive int; got {value!r}")
    return int(value)


class Linear(Layer):
    """Fully connected layer `y = x @ W.T + b`.

    Shape: x (N, in_features) -> y (N, out_features). Params: `W` (out_features, in_features), drawn by
    `init_weight(scheme=init, mode=init_mode, scale=init_scale)` with `fan_in = in_features`,
    `fan_out = out_features`; `b` (out_features,), zeros, absent when `bias=False`.
    """

    kind = "linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator,
        init: str = "he",
        init_mode: str = "avg",
        init_scale: float = 0.01,
        bias: bool = True,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "Linear in_features")
        self.out_features = _positive_int(out_features, "Linear out_features")
        self.dtype = np.dtype(dtype)
        shape = (self.out_features, self.in_features)
        self.params["W"] = init_weight(
            shape, init, fan_in=self.in_features, fan_out=self.out_features, rng=rng,
            mode=init_mode, scale=init_scale, dtype=self.dtype,
        )
        self.grads["W"] = np.zeros(shape, dtype=self.dtype)
        if bias:
            self.params["b"] = np.zeros(self.out_features, dtype=self.dtype)
            self.grads["b"] = np.zeros(self.out_features, dtype=self.dtype)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = F.linear_forward(x, self.params["W"], self.params.get("b"))
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, _, _ = F.linear_backward(dy, self.cache, dW=self.grads["W"], db=self.grads.get("b"))
        return dx

    def backward_params(self, dy: np.ndarray) -> None:
        """Fill `grads` like `backward` but skip the input gradient (its GEMM is a third of the layer's cost);
        `Sequential.backward(dy, input_grad=False)` uses it for a first layer.
        """
        F.linear_backward(dy, self.cache, dW=self.grads["W"], db=self.grads.get("b"), need_dx=False)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Linear expects per-sample input shape ({self.in_features},); got {input_shape}")
        return (self.out_features,)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bias={'b' in self.params}"


class TiedLinear(Layer):
    """The transpose of another Linear layer, with its own bias: `y = x @ W + b`, W the `source` layer's (out, in).

    A tied-weight autoencoder's decoder layer (the course's `L = 1/2 ||W^T W x - x||^2`). W belongs to `source`
    and is optimized and saved once, there; this layer's use of it adds `x^T dy` to the source's gradient after
    the whole backward pass (`Sequential.backward` calls `add_shared_grads`), so that the gradient of the shared
    matrix is the sum of both uses.
    Shape: x (N, source.out_features) -> y (N, source.in_features). Params: `b` (source.in_features,), zeros.
    """

    kind = "tied_linear"

    def __init__(self, source: Linear) -> None:
        super().__init__()
        self.source = source
        self.params["b"] = np.zeros(source.in_features, dtype=source.dtype)
        self.grads["b"] = np.zeros(source.in_features, dtype=source.dtype)
        self.shared_grad = np.zeros_like(source.params["W"])

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self.cache = x
        return x @ self.source.params["W"] + self.params["b"]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x = self.cache
        np.matmul(x.T, dy, out=self.shared_grad)  # (out, in): this use's share of dL/dW
        np.sum(dy, axis=0, out=self.grads["b"])
        return dy @ self.source.params["W"].T

    def add_shared_grads(self) -> None:
        """Add this layer's share of the tied matrix's gradient to the source layer's (after its backward)."""
        self.source.grads["W"] += self.shared_grad

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.source.in_features,)

    def extra_repr(self) -> str:
        return f"in={self.source.out_features}, out={self.source.in_features}, tied"


class Dropout(Layer):
    """Dropout: at training time each unit is zeroed with probability `p`.

    mode `inverted` (the default): the kept units are scaled by `1/(1 - p)` at training time and evaluation is
    the identity. mode `scale_at_test` (the course's first form): training keeps the units as they are and
    evaluation multiplies by `1 - p`. Both keep the expected activation equal between training and evaluation;
    they are the same network function up to that scale of the next layer's weights.
    Shape: any -> same. The mask is drawn from the generator in `self.rng` (replace it to fix the mask).
    """

    kind = "dropout"
    MODES = ("inverted", "scale_at_test")

    def __init__(self, p: float, *, rng: np.random.Generator, mode: str = "inverted") -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p (probability of dropping) must be in [0, 1); got {p!r}")
        if mode not in self.MODES:
            raise ValueError(f"Dropout mode must be one of {', '.join(self.MODES)}; got {mode!r}")
        self.p = float(p)
        self.rng = rng
        self.mode = mode

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if self.p == 0.0:
            self.cache = None
            return x
        if not train:
            self.cache = None
            return x if self.mode == "inverted" else x * x.dtype.type(1.0 - self.p)
        y, self.cache = F.dropout_forward(x, self.p, self.rng, inverted=self.mode == "inverted")
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self.cache is None else F.dropout_backward(dy, self.cache)

    def extra_repr(self) -> str:
        return f"p={self.p}" + ("" if self.mode == "inverted" else ", scale_at_test")


class BatchNorm1d(Layer):
    """Batch normalization over the features of a 2-D batch, with PyTorch's running statistics.

    Train: `y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta` with the batch mean and BIASED batch variance,
    then `running_mean = (1 - momentum) * running_mean + momentum * mean_B` and
    `running_var = (1 - momentum) * running_var + momentum * var_B * N / (N - 1)` (UNBIASED).
    Eval: the same map with `running_mean`/`running_var` in place of the batch statistics.
    Shape: x (N, num_features) -> y (N, num_features). Params `gamma` (ones), `beta` (zeros);
    buffers `running_mean` (zeros), `running_var` (ones).
    """

    kind = "batchnorm"

    def __init__(
        self, num_features: int, *, momentum: float = 0.1, eps: float = 1e-5, dtype: np.dtype | type = np.float32
    ) -> None:
        super().__init__()
        self.num_features = _positive_int(num_features, "BatchNorm1d num_features")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm1d momentum must be in [0, 1]; got {momentum!r}")
        if eps <= 0:
            raise ValueError(f"BatchNorm1d eps must be > 0; got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.dtype = np.dtype(dtype)
        d = self.num_features
        self.params["gamma"] = np.ones(d, dtype=self.dtype)
        self.params["beta"] = np.zeros(d, dtype=self.dtype)
        self.grads["gamma"] = np.zeros(d, dtype=self.dtype)
        self.grads["beta"] = np.zeros(d, dtype=self.dtype)
        self.buffers["running_mean"] = np.zeros(d, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(d, dtype=self.dtype)
        self._train_mode = False

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d expects input (N, {self.num_features}); got {x.shape}")
        gamma, beta = self.params["gamma"], self.params["beta"]
        self._train_mode = train
        if not train:
            y, self.cache = F.batchnorm_inference_forward(
                x, gamma, beta, self.buffers["running_mean"], self.buffers["running_var"], self.eps
            )
            return y
        n = x.shape[0]
        if n < 2:
            raise ValueError(f"BatchNorm1d needs at least 2 samples per batch in training; got {n}")
        y, self.cache = F.batchnorm_forward(x, gamma, beta, self.eps)
        m = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= 1.0 - m
        running_mean += m * self.cache.mean
        running_var *= 1.0 - m
        running_var += (m * n / (n - 1)) * self.cache.var
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        pair_backward = F.batchnorm_backward if self._train_mode else F.batchnorm_inference_backward
        dx, dgamma, dbeta = pair_backward(dy, self.cache)
        self.grads["gamma"][...] = dgamma
        self.grads["beta"][...] = dbeta
        return dx

    def extra_repr(self) -> str:
        return f"features={self.num_features}, momentum={self.momentum}, eps={self.eps}"


class Flatten(Layer):
    """Flatten all axes after the batch axis: x (N, d1, d2, ...) -> y (N, d1*d2*...); a view of contiguous input."""

    kind = "flatten"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self.cache)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)


class BatchNorm2d(Layer):
    """Per-channel batch normalization of NCHW batches, statistics over (N, H, W).

    Train: `y = gamma * (x - mean_b) / sqrt(var_b + eps) + beta` with the biased batch variance, and
    `running = (1 - momentum) * running + momentum * batch` (unbiased variance for `running_var`, as PyTorch).
    Eval: the same with `running_mean` / `running_var`. Params `gamma` (ones), `beta` (zeros): (C,);
    buffers `running_mean` (zeros), `running_var` (ones): (C,).
    """

    kind = "batchnorm2d"

    def __init__(self, num_features: int, *, momentum: float = 0.1, eps: float = 1e-5,
                 dtype: type | np.dtype = np.float32) -> None:
        super().__init__()
        self.num_features = _positive_int(num_features, "BatchNorm2d num_features")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.params["gamma"] = np.ones(self.num_features, dtype=dtype)
        self.params["beta"] = np.zeros(self.num_features, dtype=dtype)
        self.buffers["running_mean"] = np.zeros(self.num_features, dtype=dtype)
        self.buffers["running_var"] = np.ones(self.num_features, dtype=dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, H, W); in train mode also updates the running statistics."""
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not train:
            y, cache = F.batchnorm2d_inference_forward(
                x, gamma, beta, self.buffers["running_mean"], self.buffers["running_var"], self.eps)
            self.cache = (False, cache)
            return y
        y, cache = F.batchnorm2d_forward(x, gamma, beta, self.eps)
        self.cache = (True, cache)
        count = x.size // x.shape[1]
        m = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean[...] = (1 - m) * running_mean + m * cache.mean
        running_var[...] = (1 - m) * running_var + m * cache.var * (count / max(count - 1, 1))
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy: (N, C, H, W) -> dx: (N, C, H, W); fills grads `gamma` and `beta`."""
        train, cache = self.cache
        grad = F.batchnorm2d_backward if train else F.batchnorm2d_inference_backward
        dx, self.grads["gamma"][...], self.grads["beta"][...] = grad(dy, cache)
        return dx

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3 or input_shape[0] != self.num_features:
            raise ValueError(f"batchnorm2d expects input (C={self.num_features}, H, W), got {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"features={self.num_features}, momentum={self.momentum}, eps={self.eps}"
