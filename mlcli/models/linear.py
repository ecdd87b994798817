"""Least-squares linear regression: y_hat = x W^T + b, by gradient descent (a network) or in closed form."""

from __future__ import annotations

from mlcli.models.context import BuildContext, linear_layer
from mlcli.models.network import NetworkModel
from mlcli.nn.layers import Flatten
from mlcli.nn.network import Sequential


def build_linear_regression(cfg, ctx: BuildContext):
    """`solver: gd` -> Flatten -> Linear(D, k) trained on MSE; `closed_form` -> the least-squares solution."""
    if cfg.solver == "closed_form":
        from mlcli.models.classical import ClassicalModel
        from mlcli.models.least_squares import LeastSquares

        return ClassicalModel(LeastSquares(l2=cfg.l2), task="regression")
    net = Sequential([Flatten(), linear_layer(ctx, ctx.n_features, ctx.n_outputs, cfg.init)])
    return NetworkModel(net, loss="mse", task="regression")
