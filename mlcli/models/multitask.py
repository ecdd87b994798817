"""Multitask networks: one shared trunk, one head per task, one loss per head (the course's multitask learning).

    trunk (mlp hidden layers | cnn layers, flattened)  ->  Heads{digit: [hidden...] -> Linear(10),
                                                                  parity: [hidden...] -> Linear(2)}

The network is a `Sequential` of the trunk's layers and one `Heads` layer, whose output holds the heads' outputs
side by side (`slices`). With head losses L_h (each the mean over the batch, as the single-task losses) and
weights w_h, the training loss is L = sum_h w_h L_h; its gradient w.r.t. head h's outputs is w_h dL_h/dout_h,
and the trunk receives the sum of the heads' input gradients.

Targets: y (N, T), one column per data target (`TargetSpec`), class labels as whole numbers. Metrics: the total
`loss` and per head `<head>_loss` (unweighted) plus `<head>_accuracy` or `<head>_mse`, `<head>_r2`.
Predictions are per head: `predict(x) -> {head: labels (N,) | values (N,)}`.

Initialization: the trunk draws from the init generator first, as the single-task network's hidden layers do;
then EVERY head is initialized from the generator state the trunk left, so that a head's initial weights are
those of the output layer of the single-task network for that target. With one head weighted 1 and the others
0, the trunk and that head train exactly as the single-task network does (same config, same seed).
"""

from __future__ import annotations

import numpy as np

from mlcli.models.context import BuildContext, activation_layer, linear_layer
from mlcli.models.metrics import RunningMetrics, task_metrics
from mlcli.models.network import NetworkModel
from mlcli.nn import losses
from mlcli.nn.heads import Heads
from mlcli.nn.network import Sequential


def head_widths(model_cfg, targets) -> dict[str, int]:
    """Output width of each head: the classes of its target (1 with sigmoid_bce), 1 for regression.
    targets: the data's `TargetSpec`s. ConfigError for sigmoid_bce on a target without 2 classes."""
    from mlcli.errors import ConfigError

    by_name = {spec.name: spec for spec in targets}
    out = {}
    for name, head in model_cfg.heads.items():
        spec = by_name[model_cfg.target_of(name)]
        if head.type == "regression":
            out[name] = 1
        elif head.loss_name() == "sigmoid_bce":
            if spec.n_classes != 2:
                raise ConfigError(f"model.heads.{name}.loss: sigmoid_bce needs exactly 2 classes; target "
                                  f"{spec.name!r} has {spec.n_classes}")
            out[name] = 1
        else:
            out[name] = int(spec.n_classes)
    return out


class MultitaskModel(NetworkModel):
    """A trunk and named heads in one `Sequential` (`net`), trained on the weighted sum of the heads' losses.

    heads: name -> (task, loss, weight, label_smoothing, target column index into y)."""

    def __init__(self, net: Sequential, *, heads: dict[str, dict], targets) -> None:
        super().__init__(net, loss="multitask", task="multitask")
        self.heads = heads
        self.targets = tuple(targets)
        self.slices = net.layers[-1].slices
        self.last_head_losses: dict[str, float] = {}

    # ------------------------------------------------------------------------------------------- training
    def loss_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted total loss of outputs `out` (B, width) against targets (B, T) and its gradient (B, width);
        each head's own (unweighted) loss is kept in `last_head_losses`."""
        total = 0.0
        dout = np.empty_like(out)
        head_losses = {}
        for name, head in self.heads.items():
            sl = self.slices[name]
            loss, d = self._head_loss(head, np.ascontiguousarray(out[:, sl]), target[:, head["column"]])
            head_losses[name] = float(loss)
            total += head["weight"] * float(loss)
            dout[:, sl] = head["weight"] * d
        self.last_head_losses = head_losses
        return total, dout

    @staticmethod
    def _head_loss(head: dict, out: np.ndarray, column: np.ndarray) -> tuple[float, np.ndarray]:
        if head["loss"] == "softmax_cross_entropy":
            return losses.softmax_cross_entropy(out, column.astype(np.int64),
                                                label_smoothing=head["label_smoothing"])
        if head["loss"] == "sigmoid_bce":
            return losses.sigmoid_binary_cross_entropy(out, column.reshape(out.shape).astype(out.dtype))
        return losses.mean_squared_error(out, column.reshape(out.shape).astype(out.dtype))

    def target(self, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        return y

    def objective_closure(self, x, y, l2: float = 0.0):
        raise NotImplementedError("second-order optimizers do not train multitask models")

    def running_metrics(self, all_targets: np.ndarray) -> MultitaskRunningMetrics:
        return MultitaskRunningMetrics(self, all_targets)

    def head_target(self, name: str):
        """The `TargetSpec` (name, task, class names) of the data target head `name` learns."""
        return next(spec for spec in self.targets if spec.name == self.heads[name]["target"])

    # ---------------------------------------------------------------------------------------- inference
    def decide_head(self, name: str, out: np.ndarray) -> np.ndarray:
        """Head `name`'s predictions from its outputs (B, K): labels (B,) or values (B,)."""
        head = self.heads[name]
        if head["task"] == "classification":
            if head["loss"] == "sigmoid_bce":
                return (out.reshape(-1) > 0).astype(np.int64)
            return out.argmax(axis=1)
        return out[:, 0]

    def decide(self, out: np.ndarray) -> dict[str, np.ndarray]:
        """Predictions of every head from the network's outputs (N, width): head -> (N,)."""
        return {name: self.decide_head(name, out[:, sl]) for name, sl in self.slices.items()}

    def probabilities(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Class probabilities (N, C) float64 of every classification head."""
        out = self.outputs(x).astype(np.float64)
        probs = {}
        for name, head in self.heads.items():
            if head["task"] != "classification":
                continue
            o = out[:, self.slices[name]]
            if head["loss"] == "sigmoid_bce":
                with np.errstate(over="ignore"):
                    p1 = 1.0 / (1.0 + np.exp(-o[:, 0]))
                probs[name] = np.stack([1.0 - p1, p1], axis=1)
            else:
                probs[name] = losses.softmax(o)
        return probs

    def evaluate(self, x: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
        """The total loss and every head's loss and task metrics over a whole split."""
        out = self.outputs(x)
        loss, _ = self.loss_and_grad(out, y)
        metrics = {"loss": float(loss)}
        decided = self.decide(out)
        for name, head in self.heads.items():
            metrics[f"{name}_loss"] = self.last_head_losses[name]
            column = y[:, head["column"]]
            if head["task"] == "classification":
                column = column.astype(np.int64)
            metrics.update({f"{name}_{k}": v for k, v in task_metrics(head["task"], decided[name], column).items()})
        return metrics


class MultitaskRunningMetrics:
    """An epoch's running train metrics of a multitask model: the total loss and each head's own."""

    def __init__(self, model: MultitaskModel, all_targets: np.ndarray) -> None:
        self.model = model
        self.n = 0
        self.loss_sum = 0.0
        self.per_head = {name: RunningMetrics(head["task"], all_targets[:, head["column"]])
                         for name, head in model.heads.items()}

    def add(self, loss: float, out: np.ndarray, target: np.ndarray, decide) -> None:
        """One batch: its total loss, outputs (B, width) and targets (B, T); head losses from the model."""
        b = len(out)
        self.n += b
        self.loss_sum += loss * b
        for name, head in self.model.heads.items():
            column = target[:, head["column"]]
            if head["task"] == "classification":
                column = column.astype(np.int64)
            self.per_head[name].add(self.model.last_head_losses[name], out[:, self.model.slices[name]], column,
                                    lambda o, name=name: self.model.decide_head(name, o))

    def result(self) -> dict[str, float]:
        out = {"loss": self.loss_sum / max(self.n, 1)}
        for name, running in self.per_head.items():
            out.update({f"{name}_{k}": v for k, v in running.result().items()})
        return out


def build_multitask(cfg, ctx: BuildContext) -> MultitaskModel:
    """The trunk from `cfg.trunk` (an mlp's hidden layers or a cnn's layers), then the heads, each initialized
    from the generator state after the trunk (see the module docstring). `ctx.targets` are the data's targets,
    `ctx.head_outputs` the heads' widths (`head_widths`)."""
    from mlcli.models.cnn import cnn_body
    from mlcli.models.mlp import mlp_body

    trunk = cfg.trunk
    if trunk.type == "mlp":
        layers, width = mlp_body(trunk, ctx)
    else:
        layers, width = cnn_body(trunk, ctx, "model.trunk.layers")
    activation = getattr(trunk, "activation", "relu")
    options = getattr(trunk, "activation_options", None)
    after_trunk = ctx.init_rng.bit_generator.state if ctx.init_rng is not None else None
    columns = {spec.name: t for t, spec in enumerate(ctx.targets)}
    nets, heads = {}, {}
    for name, head in cfg.heads.items():
        if after_trunk is not None:
            ctx.init_rng.bit_generator.state = after_trunk
        init = head.init or cfg.init
        head_layers, w = [], width
        for units in head.hidden:
            head_layers.append(linear_layer(ctx, w, units, init))
            head_layers.append(_activation(head.activation or activation, options, ctx, units))
            w = units
        head_layers.append(linear_layer(ctx, w, ctx.head_outputs[name], init))
        nets[name] = Sequential(head_layers)
        heads[name] = {"task": head.type, "loss": head.loss_name(), "weight": float(head.weight),
                       "label_smoothing": float(head.label_smoothing), "column": columns[cfg.target_of(name)],
                       "target": cfg.target_of(name)}
    layers.append(Heads(nets, ctx.head_outputs))
    return MultitaskModel(Sequential(layers), heads=heads, targets=ctx.targets)


def _activation(name, options, ctx, units):
    if options is None:
        from mlcli.config.model_schema import ActivationOptions

        options = ActivationOptions()
    return activation_layer(name, options, ctx, units)
