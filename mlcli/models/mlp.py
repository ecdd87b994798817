"""The multilayer perceptron: per hidden layer Linear -> [BatchNorm1d] -> activation -> [Dropout].

A Linear followed by batchnorm has no bias (batchnorm's beta plays that role; the bias would get zero gradient).

Dropout has p = probability of dropping (inverted, or scaled at test time with `dropout_mode: scale_at_test`); a
hidden layer's own `dropout` overrides the model's.
"""

from __future__ import annotations

from mlcli.models.context import BuildContext, activation_layer, linear_layer
from mlcli.models.network import NetworkModel
from mlcli.nn.layers import BatchNorm1d, Dropout, Flatten
from mlcli.nn.network import Sequential


def build_mlp(cfg, ctx: BuildContext, *, loss: str, task: str = "classification",
              label_smoothing: float = 0.0) -> NetworkModel:
    layers, width = mlp_body(cfg, ctx)
    layers.append(linear_layer(ctx, width, ctx.n_outputs, cfg.init))
    return NetworkModel(Sequential(layers), loss=loss, task=task, label_smoothing=label_smoothing)


def mlp_body(cfg, ctx: BuildContext) -> tuple[list, int]:
    """The hidden layers of an MLP (Flatten first) and the width of their output (also a multitask trunk)."""
    layers = [Flatten()]
    width = ctx.n_features
    for spec in cfg.hidden:
        units = spec if isinstance(spec, int) else spec.units
        init = cfg.init if isinstance(spec, int) or spec.init is None else spec.init
        dropout = cfg.dropout if isinstance(spec, int) or spec.dropout is None else spec.dropout
        layers.append(linear_layer(ctx, width, units, init, bias=not cfg.batchnorm))
        if cfg.batchnorm:
            layers.append(BatchNorm1d(units, dtype=ctx.dtype))
        layers.append(activation_layer(cfg.activation, cfg.activation_options, ctx, units))
        if dropout > 0:
            layers.append(Dropout(dropout, rng=ctx.dropout_rng, mode=cfg.dropout_mode))
        width = units
    return layers, width
