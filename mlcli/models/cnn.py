"""Convolutional networks: a `layers:` list from the config, and the named architectures built from such lists.

Every layer's output shape is computed while building, so an impossible stack is a config error naming the layer
index, its input shape and why (`model.layers.3 (maxpool): input (16, 3, 3): maxpool: (3 + 2*0 - 2) / 2 + 1 =
1.50 is not a whole number`). A final Linear to the classes is appended, after a Flatten when needed.

Named architectures (`lenet5`, `vgg`, `alexnet`, `zfnet`) expand to the same layer specs, so `mlcli summary` and
the trainer see exactly what a hand-written `cnn` config would give.

Each layer spec is built by `LAYER_BUILDERS[spec.type]`. Adding a layer type: its section in the `CnnLayer` union
(config/model_schema.py), its builder row here, and the layer itself in `mlcli.nn`.
"""

from __future__ import annotations

import typing
from collections.abc import Callable

from mlcli.config.model_schema import (
    ActivationLayer,
    ActivationName,
    BatchNormLayer,
    ConvLayer,
    DropoutLayer,
    FlattenLayer,
    LinearLayer,
    PoolLayer,
)
from mlcli.errors import ConfigError
from mlcli.models.context import BuildContext, activation_layer, init_scheme, linear_layer
from mlcli.models.network import NetworkModel
from mlcli.nn.conv import Conv2d
from mlcli.nn.layers import BatchNorm1d, BatchNorm2d, Dropout, Flatten
from mlcli.nn.network import Sequential
from mlcli.nn.pooling import AvgPool2d, MaxPool2d


def lenet5_specs(cfg, input_shape: tuple[int, ...]) -> list:
    """C1 conv 6@5x5 -> S2 pool 2 -> C3 conv 16@5x5 -> S4 pool 2 -> C5 120 -> F6 84 (LeCun et al. 1998).

    Adapted to the input size: C1 and C3 pad by 2 when their input is smaller than the original's (32 and 14),
    and C5 is a convolution covering the whole remaining map (as in the original, where that map is 5x5).
    """
    _, h, w = input_shape
    act = ActivationLayer(type=cfg.activation)
    pad1 = 0 if min(h, w) >= 32 else 2
    h1 = (h + 2 * pad1 - 4) // 2
    pad3 = 0 if h1 >= 14 else 2
    h3 = (h1 + 2 * pad3 - 4) // 2
    w3 = ((w + 2 * pad1 - 4) // 2 + 2 * pad3 - 4) // 2
    pool = PoolLayer(type=cfg.pool, kernel=2)
    specs = [ConvLayer(type="conv", out_channels=6, kernel=5, padding=pad1), act, pool,
             ConvLayer(type="conv", out_channels=16, kernel=5, padding=pad3), act, pool]
    if h3 == w3 and h3 >= 1:
        specs += [ConvLayer(type="conv", out_channels=120, kernel=h3), act, FlattenLayer(type="flatten")]
    else:
        specs += [FlattenLayer(type="flatten"), LinearLayer(type="linear", units=120), act]
    return [*specs, LinearLayer(type="linear", units=84), act]


def vgg_specs(cfg, input_shape: tuple[int, ...]) -> list:
    """Stages of `convs_per_stage` 3x3 convs (padding 1) [+ batchnorm] + ReLU, each closed by a 2x2 max pool."""
    specs: list = []
    for width in cfg.widths:
        for _ in range(cfg.convs_per_stage):
            specs.append(ConvLayer(type="conv", out_channels=width, kernel=3, padding=1))
            if cfg.batchnorm:
                specs.append(BatchNormLayer(type="batchnorm"))
            specs.append(ActivationLayer(type="relu"))
        specs.append(PoolLayer(type="maxpool", kernel=2))
    specs.append(FlattenLayer(type="flatten"))
    for units in cfg.hidden:
        specs += [LinearLayer(type="linear", units=units), ActivationLayer(type="relu")]
        if cfg.dropout > 0:
            specs.append(DropoutLayer(type="dropout", p=cfg.dropout))
    return specs


def _alexnet_like(cfg, first: list) -> list:
    relu = ActivationLayer(type="relu")
    specs = list(first)
    for width in (384, 384, 256):
        specs += [ConvLayer(type="conv", out_channels=width, kernel=3, padding=1), relu]
    specs += [PoolLayer(type="maxpool", kernel=3, stride=2), FlattenLayer(type="flatten")]
    for _ in range(2):
        specs += [LinearLayer(type="linear", units=4096), relu]
        if cfg.dropout > 0:
            specs.append(DropoutLayer(type="dropout", p=cfg.dropout))
    return specs


def alexnet_specs(cfg, input_shape: tuple[int, ...]) -> list:
    """227x227x3 -> conv 96@11x11/4 -> 55 -> pool 3/2 -> 27 -> conv 256@5x5 p2 -> pool -> 13 -> conv 384, 384,
    256 @3x3 p1 -> pool -> 6x6x256 -> fc 4096 -> fc 4096 -> classes (one tower, 62.4M parameters at 1000)."""
    relu = ActivationLayer(type="relu")
    pool = PoolLayer(type="maxpool", kernel=3, stride=2)
    return _alexnet_like(cfg, [ConvLayer(type="conv", out_channels=96, kernel=11, stride=4), relu, pool,
                               ConvLayer(type="conv", out_channels=256, kernel=5, padding=2), relu, pool])


def zfnet_specs(cfg, input_shape: tuple[int, ...]) -> list:
    """224x224x3 -> conv 96@7x7/2 p1 -> 110 -> pool 3/2 -> 55 -> conv 256@5x5/2 -> 26 -> pool 3/2 -> 13 -> conv
    384, 384, 256 @3x3 p1 -> pool 3/2 -> 6x6x256 -> fc 4096 -> fc 4096 -> classes (Zeiler & Fergus 2013).

    The published sizes are not exact divisions (224 -> 110 -> 55 and 26 -> 13), so, as in the Caffe models that
    produced them, conv1 floors its output size and the first two pools use ceil mode.
    """
    relu = ActivationLayer(type="relu")
    return _alexnet_like(cfg, [
        ConvLayer(type="conv", out_channels=96, kernel=7, stride=2, padding=1, rounding="floor"), relu,
        PoolLayer(type="maxpool", kernel=3, stride=2, ceil_mode=True),
        ConvLayer(type="conv", out_channels=256, kernel=5, stride=2), relu,
        PoolLayer(type="maxpool", kernel=3, stride=2, ceil_mode=True)])


NAMED = {"lenet5": lenet5_specs, "vgg": vgg_specs, "alexnet": alexnet_specs, "zfnet": zfnet_specs}


def layer_specs(cfg, input_shape: tuple[int, ...]) -> list:
    """The body of the network as layer specs (without the final classifier)."""
    if cfg.type == "cnn":
        return list(cfg.layers)
    return NAMED[cfg.type](cfg, input_shape)


def build_cnn(cfg, ctx: BuildContext, *, loss: str, label_smoothing: float = 0.0) -> NetworkModel:
    """Build the network, checking every layer's input shape; ConfigError names the failing layer."""
    layers, width = cnn_body(cfg, ctx, "model.layers" if cfg.type == "cnn" else f"model ({cfg.type})")
    layers.append(linear_layer(ctx, width, ctx.n_outputs, cfg.init))
    return NetworkModel(Sequential(layers), loss=loss, task="classification", label_smoothing=label_smoothing)


def cnn_body(cfg, ctx: BuildContext, where: str) -> tuple[list, int]:
    """The layers of a convolutional network before its output layer, flattened at the end, and their output
    width (also a multitask trunk); `where` is the config path errors name (`model.layers`)."""
    shape = tuple(ctx.input_shape)
    if len(shape) != 3:
        raise ConfigError(f"model.type {cfg.type} needs images (C, H, W); the data has samples of shape {shape} "
                          f"(for digits set data.as_images: true)")
    expected = {"alexnet": (3, 227, 227), "zfnet": (3, 224, 224)}.get(cfg.type)
    if expected is not None and shape != expected:
        raise ConfigError(f"model.type {cfg.type} is defined for inputs {expected}; the data has {shape}")
    specs = layer_specs(cfg, shape)
    layers = []
    for i, spec in enumerate(specs):
        before_bn = i + 1 < len(specs) and specs[i + 1].type == "batchnorm"
        try:
            layer = make_layer(spec, shape, cfg, ctx, bias=not before_bn)
            shape = tuple(layer.output_shape(shape))
        except ValueError as err:
            raise ConfigError(f"{where}.{i} ({spec.type}): input {shape}: {err}") from None
        layers.append(layer)
    if len(shape) != 1:
        layers.append(Flatten())
        shape = (int(_prod(shape)),)
    return layers, shape[0]


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def _conv(spec, shape, cfg, ctx: BuildContext, bias: bool):
    if len(shape) != 3:
        raise ValueError("a conv layer needs feature maps (C, H, W), not a flat vector")
    init = spec.init or cfg.init
    return Conv2d(shape[0], spec.out_channels, spec.kernel, stride=spec.stride, padding=spec.padding,
                  rounding=spec.rounding, rng=ctx.init_rng, init=init_scheme(ctx, init), init_mode=init.mode,
                  init_scale=init.scale, bias=bias, dtype=ctx.dtype)


def _pool(cls):
    def build(spec, shape, cfg, ctx: BuildContext, bias: bool):
        if len(shape) != 3:
            raise ValueError("pooling needs feature maps (C, H, W), not a flat vector")
        return cls(spec.kernel, spec.stride, ceil_mode=spec.ceil_mode)

    return build


def _batchnorm(spec, shape, cfg, ctx: BuildContext, bias: bool):
    return BatchNorm2d(shape[0], dtype=ctx.dtype) if len(shape) == 3 else BatchNorm1d(shape[0], dtype=ctx.dtype)


def _dropout(spec, shape, cfg, ctx: BuildContext, bias: bool):
    return Dropout(spec.p, rng=ctx.dropout_rng, mode=getattr(cfg, "dropout_mode", "inverted"))


def _flatten(spec, shape, cfg, ctx: BuildContext, bias: bool):
    return Flatten()


def _linear(spec, shape, cfg, ctx: BuildContext, bias: bool):
    if len(shape) != 1:
        raise ValueError("a linear layer needs a flat vector; add {type: flatten} before it")
    return linear_layer(ctx, shape[0], spec.units, spec.init or cfg.init, bias=bias)


def _activation(spec, shape, cfg, ctx: BuildContext, bias: bool):
    return activation_layer(spec.type, spec, ctx, shape[0])


# layer `type` -> builder(spec, per-sample input shape, model section, context, bias) -> layer; the keys are the
# `type` names of the `CnnLayer` union in mlcli/config/model_schema.py (a test checks it). A builder raises
# ValueError for an input it cannot take; `build_cnn` turns that into a ConfigError naming the layer.
LAYER_BUILDERS: dict[str, Callable] = {
    "conv": _conv,
    "maxpool": _pool(MaxPool2d),
    "avgpool": _pool(AvgPool2d),
    "batchnorm": _batchnorm,
    "dropout": _dropout,
    "flatten": _flatten,
    "linear": _linear,
    **{name: _activation for name in typing.get_args(ActivationName)},
}


def make_layer(spec, shape: tuple[int, ...], cfg, ctx: BuildContext, *, bias: bool = True):
    """One layer from its spec, given the per-sample input shape; `bias=False` for a conv/linear layer right
    before a batchnorm (whose beta makes a bias redundant)."""
    return LAYER_BUILDERS[spec.type](spec, shape, cfg, ctx, bias)
