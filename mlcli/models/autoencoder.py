"""The autoencoder: encoder Linear layers down to the code, a mirrored decoder back to the input size.

encoder [32, 8] on 64 features gives 64 -> 32 -> 8 (code) -> 32 -> 64, activations between hidden layers, none on
the reconstruction (and on the code only when `code_activation`). Trained with MSE against the flattened input.
"""

from __future__ import annotations

import itertools

from mlcli.models.context import BuildContext, activation_layer, linear_layer
from mlcli.models.network import NetworkModel
from mlcli.nn.layers import Flatten
from mlcli.nn.network import Sequential


def build_autoencoder(cfg, ctx: BuildContext) -> NetworkModel:
    sizes = [ctx.n_features, *cfg.encoder]
    layers = [Flatten()]
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(linear_layer(ctx, n_in, n_out, cfg.init))
        if i < len(sizes) - 2 or cfg.code_activation:
            layers.append(activation_layer(cfg.activation, cfg.activation_options, ctx, n_out))
    code_layer = len(layers)
    back = sizes[::-1]
    for i, (n_in, n_out) in enumerate(itertools.pairwise(back)):
        layers.append(linear_layer(ctx, n_in, n_out, cfg.init))
        if i < len(back) - 2:
            layers.append(activation_layer(cfg.activation, cfg.activation_options, ctx, n_out))
    return NetworkModel(Sequential(layers), loss="mse", task="reconstruction", code_layer=code_layer)
