"""A trainable network model: a `Sequential` of layers plus the loss that trains it and the task it serves.

The trainer talks to every gradient-trained model through this one class:

    loss, out = model.train_batch(xb, yb)   # forward (train mode), loss, backward; grads are in model.net
    metrics = model.evaluate(x, y)          # eval-mode forward in batches -> {"loss": ..., "accuracy": ...}
    y_hat = model.predict(x)                # class labels, regression values or reconstructions

Targets by task: `classification` y (N,) int labels; `regression` y (N,) or (N, k) floats; `reconstruction`
(autoencoders) ignores y and reconstructs the flattened input x.
"""

from __future__ import annotations

import numpy as np

from mlcli.nn import losses
from mlcli.nn.network import Sequential

SECOND_ORDER_KINDS = {"softmax_cross_entropy": "softmax", "sigmoid_bce": "logistic", "mse": "linear"}


class NetworkModel:
    """A network, its loss (`softmax_cross_entropy`, `sigmoid_bce` or `mse`) and its task."""

    is_network = True

    def __init__(self, net: Sequential, *, loss: str, task: str, label_smoothing: float = 0.0,
                 code_layer: int | None = None) -> None:
        self.net = net
        self.loss = loss
        self.task = task
        self.label_smoothing = label_smoothing
        self.code_layer = code_layer
        self.frozen: frozenset[str] = frozenset()  # parameter names the trainer leaves alone (`model.freeze`)
        self.eval_layers: frozenset[int] = frozenset()  # layers run in eval mode in training (frozen batchnorm)

    # ------------------------------------------------------------------------------------------- training
    def loss_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean loss of outputs `out` against `target` and its gradient w.r.t. `out`."""
        if self.loss == "softmax_cross_entropy":
            return losses.softmax_cross_entropy(out, target, label_smoothing=self.label_smoothing)
        if self.loss == "sigmoid_bce":
            return losses.sigmoid_binary_cross_entropy(out, target.reshape(out.shape).astype(out.dtype))
        return losses.mean_squared_error(out, target.reshape(out.shape))

    def target(self, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        """What the output is compared with: y, or the flattened input for an autoencoder."""
        if self.task == "reconstruction":
            return x.reshape(len(x), -1)
        return y

    def objective_closure(self, x: np.ndarray, y: np.ndarray, l2: float = 0.0):
        """The exact objective on (x, y) for second-order optimizers: `closure() -> (loss, grad, hess)` over the
        parameters in `net.params()` order (W then b of the single Linear layer a Newton-trained model has)."""
        from mlcli.optim.newton import linear_model_closure

        linear = self.net.layers[-1]
        return linear_model_closure(linear.params["W"], linear.params["b"], x.reshape(len(x), -1), y,
                                    SECOND_ORDER_KINDS[self.loss], l2)

    def train_batch(self, xb: np.ndarray, yb: np.ndarray | None) -> tuple[float, np.ndarray]:
        """One forward/backward pass in training mode; returns (data loss, outputs), leaves grads in the net."""
        out = self._train_forward(xb)
        loss, dout = self.loss_and_grad(out, self.target(xb, yb))
        self.net.backward(dout, input_grad=False)
        return float(loss), out

    def _train_forward(self, xb: np.ndarray) -> np.ndarray:
        """The training-mode forward, except the layers in `eval_layers` (frozen batchnorm: running statistics
        used and kept, as in eval mode; its backward is then the eval-mode one)."""
        if not self.eval_layers:
            return self.net.forward(xb, train=True)
        x = xb
        for i, layer in enumerate(self.net.layers):
            x = layer.forward(x, i not in self.eval_layers)
        return x

    # ---------------------------------------------------------------------------------------- inference
    def outputs(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Raw network outputs in eval mode, computed in batches. Shape (N, n_outputs)."""
        return self.net.predict(x, batch_size=batch_size)

    def decide(self, out: np.ndarray) -> np.ndarray:
        """Turn raw outputs into predictions: labels (N,), values (N,) / (N, k), or reconstructions."""
        if self.task == "classification":
            if self.loss == "sigmoid_bce":
                return (out.reshape(-1) > 0).astype(np.int64)
            return out.argmax(axis=1)
        if self.task == "regression" and out.shape[1] == 1:
            return out[:, 0]
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.decide(self.outputs(x))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) of a classifier, float64: softmax of the logits, or [1 - p, p] for one
        sigmoid logit."""
        out = self.outputs(x).astype(np.float64)
        if self.loss == "sigmoid_bce":
            with np.errstate(over="ignore"):
                p1 = 1.0 / (1.0 + np.exp(-out[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        return losses.softmax(out)

    def codes(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The autoencoder's bottleneck codes (N, code_size)."""
        if self.code_layer is None:
            raise ValueError("only an autoencoder has codes")
        parts = [self.net.forward_until(x[i:i + batch_size], self.code_layer, train=False)
                 for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=x.dtype)

    def evaluate(self, x: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
        """Metrics over a whole split: loss plus accuracy | mse, r2 | reconstruction_mse."""
        from mlcli.models.metrics import task_metrics

        out = self.outputs(x)
        target = self.target(x, y)
        loss, _ = self.loss_and_grad(out, target)
        metrics = {"loss": float(loss)}
        metrics.update(task_metrics(self.task, self.decide(out), target))
        return metrics

    # ---------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, np.ndarray]:
        """Learned parameters and buffers by dotted name (e.g. `0.linear.W`)."""
        return self.net.state_dict()

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.net.load_state_dict(state)

    def state_specs(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Dtype and shape of every saved array, derived from the built architecture."""
        return {name: (str(a.dtype), tuple(a.shape)) for name, a in self.net.state_dict().items()}
