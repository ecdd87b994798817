"""The autoencoder: encoder Linear layers down to the code, a mirrored decoder back to the input size.

encoder [32, 8] on 64 features gives 64 -> 32 -> 8 (code) -> 32 -> 64, activations between hidden layers, none on
the reconstruction (and on the code only when `code_activation`). Trained with MSE against the flattened input.
With `tied_weights`, each decoder layer is the transpose of its mirrored encoder layer (`TiedLinear`: W shared,
its own bias): 64 -> 32 -> 8 uses W1 (32, 64) and W2 (8, 32), the decoder W2^T then W1^T.
"""

from __future__ import annotations

import itertools

from mlcli.models.context import BuildContext, activation_layer, linear_layer
from mlcli.models.network import NetworkModel
from mlcli.nn.layers import Flatten, TiedLinear
from mlcli.nn.network import Sequential


def build_autoencoder(cfg, ctx: BuildContext) -> NetworkModel:
    sizes = [ctx.n_features, *cfg.encoder]
    layers = [Flatten()]
    encoder = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        encoder.append(linear_layer(ctx, n_in, n_out, cfg.init))
        layers.append(encoder[-1])
        if i < len(sizes) - 2 or cfg.code_activation:
            layers.append(activation_layer(cfg.activation, cfg.activation_options, ctx, n_out))
    code_layer = len(layers)
    back = sizes[::-1]
    for i, (n_in, n_out) in enumerate(itertools.pairwise(back)):
        layers.append(TiedLinear(encoder[-1 - i]) if cfg.tied_weights else linear_layer(ctx, n_in, n_out, cfg.init))
        if i < len(back) - 2:
            layers.append(activation_layer(cfg.activation, cfg.activation_options, ctx, n_out))
    return NetworkModel(Sequential(layers), loss="mse", task="reconstruction", code_layer=code_layer)
