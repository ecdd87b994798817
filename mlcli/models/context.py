"""What a model builder needs besides its config section: the data's shape, the dtype and the generators.

    ctx = BuildContext(input_shape=(64,), n_outputs=10, dtype=np.float32, init_rng=..., dropout_rng=...)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BuildContext:
    """input_shape: one sample's shape, e.g. (64,) or (1, 8, 8); n_outputs: classes (1 for sigmoid BCE),
    regression targets, or input features for an autoencoder."""

    input_shape: tuple[int, ...]
    n_outputs: int
    dtype: type = np.float32
    init_rng: np.random.Generator | None = None
    dropout_rng: np.random.Generator | None = None
    zero_init: bool = False  # rebuilding to load saved weights: zeros cost no random draws and no page touches
    targets: tuple = ()  # a multitask model's data targets (`mlcli.data.dataset.TargetSpec`)
    head_outputs: dict | None = None  # a multitask model's head -> output width

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))


def compute_dtype(config) -> type:
    """The array dtype a config computes in: float32 unless `train.dtype` asks for float64."""
    return np.float64 if config.train.dtype == "float64" else np.float32


def init_scheme(ctx: BuildContext, init) -> str:
    return "zeros" if ctx.zero_init else init.scheme


def linear_layer(ctx: BuildContext, n_in: int, n_out: int, init, *, bias: bool = True):
    """A Linear layer initialized as the config's `init` section says (no bias right before a batchnorm, whose
    shift makes it redundant: its gradient is exactly zero)."""
    from mlcli.nn.layers import Linear

    return Linear(n_in, n_out, rng=ctx.init_rng, init=init_scheme(ctx, init), init_mode=init.mode,
                  init_scale=init.scale, bias=bias, dtype=ctx.dtype)


def activation_layer(name: str, options, ctx: BuildContext, n_features: int):
    """An activation layer with the options of `activation_options` that apply to it."""
    from mlcli.nn.activations import make_activation

    if name == "leaky_relu":
        return make_activation(name, negative_slope=options.negative_slope)
    if name == "elu":
        return make_activation(name, alpha=options.alpha)
    if name == "prelu":
        return make_activation(name, num_parameters=n_features, init=options.prelu_init, dtype=ctx.dtype)
    return make_activation(name)
