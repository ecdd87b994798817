"""The linear (softmax) classifier: scores = x W^T + b, W (C, D); with sigmoid BCE, one logit (logistic)."""

from __future__ import annotations

from mlcli.models.context import BuildContext, linear_layer
from mlcli.models.network import NetworkModel
from mlcli.nn.layers import Flatten
from mlcli.nn.network import Sequential


def build_softmax(cfg, ctx: BuildContext, *, loss: str, label_smoothing: float = 0.0) -> NetworkModel:
    """Flatten -> Linear(D, C)."""
    net = Sequential([Flatten(), linear_layer(ctx, ctx.n_features, ctx.n_outputs, cfg.init)])
    return NetworkModel(net, loss=loss, task="classification", label_smoothing=label_smoothing)
