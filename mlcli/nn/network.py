"""`Sequential`: a network that is a list of layers applied in order, with dotted names for every array.

Every learnable array is named `"<index>.<kind>.<param>"` (e.g. `"0.linear.W"`, `"1.batchnorm.gamma"`), every
buffer likewise (`"1.batchnorm.running_mean"`). The optimizer, checkpoints and gradient-check reports all use
these names. `params()` returns the layers' own arrays, so an optimizer that updates them in place updates
the network; `state_dict()` returns copies.
"""

from __future__ import annotations

import numpy as np

from mlcli.nn.base import Layer


class Sequential:
    """Layers applied in order: `forward` runs `layers[0]` first, `backward` runs them in reverse."""

    def __init__(self, layers: list[Layer]) -> None:
        self.layers = list(layers)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Run every layer on the batch `x`; `train` selects training behaviour (dropout, batch statistics)."""
        return self.forward_until(x, len(self.layers), train)

    def forward_until(self, x: np.ndarray, stop: int, train: bool = False) -> np.ndarray:
        """Run `layers[:stop]` only, e.g. the encoder half of an autoencoder to get its codes."""
        for layer in self.layers[:stop]:
            x = layer.forward(x, train)
        return x

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate dL/d(output) of the last forward through every layer; fills each layer's `grads` and
        returns dL/d(input).

        With `input_grad=False` (training, where nobody reads dL/d(input)) the pass stops at the first layer
        that has parameters: the parameter-free layers before it (an MLP's leading Flatten) only carry the input
        gradient, and that layer fills its grads through `backward_params` when it offers one (Linear: no `dx`
        GEMM, a third of its backward cost). None is returned.
        """
        if input_grad:
            for layer in reversed(self.layers):
                dy = layer.backward(dy)
            self._add_shared_grads()
            return dy
        first = next((i for i, layer in enumerate(self.layers) if layer.params), len(self.layers))
        for layer in reversed(self.layers[first + 1:]):
            dy = layer.backward(dy)
        if first < len(self.layers):
            layer = self.layers[first]
            if hasattr(layer, "backward_params"):
                layer.backward_params(dy)
            else:
                layer.backward(dy)
        self._add_shared_grads()
        return None

    def _add_shared_grads(self) -> None:
        """Layers that use another layer's matrix (TiedLinear) add their share of its gradient last."""
        for layer in self.layers:
            if hasattr(layer, "add_shared_grads"):
                layer.add_shared_grads()

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Evaluation-mode forward over `x` in batches of `batch_size`, outputs concatenated along axis 0."""
        if len(x) <= batch_size:
            return self.forward(x, train=False)
        return np.concatenate([self.forward(x[i:i + batch_size], train=False)
                               for i in range(0, len(x), batch_size)])

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample input shape (no batch axis)."""
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

    def _named(self, attribute: str) -> dict[str, np.ndarray]:
        return {f"{i}.{layer.kind}.{name}": array
                for i, layer in enumerate(self.layers)
                for name, array in getattr(layer, attribute).items()}

    def params(self) -> dict[str, np.ndarray]:
        """Learnable arrays by dotted name; the values ARE the layers' arrays (update them in place)."""
        return self._named("params")

    def grads(self) -> dict[str, np.ndarray]:
        """Gradients of the last backward, with the same names and shapes as `params()`.

        Layers allocate their gradient arrays once and overwrite them in place on every backward, so a trainer
        may fetch this dict once and keep it (the trainer does).
        """
        return self._named("grads")

    def buffers(self) -> dict[str, np.ndarray]:
        """Saved, never optimized arrays (batchnorm running statistics) by dotted name."""
        return self._named("buffers")

    def num_params(self) -> int:
        """Total number of learnable scalars."""
        return sum(p.size for p in self.params().values())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by dotted name."""
        return {name: array.copy() for name, array in {**self.params(), **self.buffers()}.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy `state` into the network's arrays in place, strictly: the names must be exactly those of
        `state_dict()` and every array must match in shape and dtype; otherwise ValueError lists every
        missing, unexpected and mismatched name, and nothing is loaded.
        """
        own = {**self.params(), **self.buffers()}
        problems = []
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected {', '.join(unexpected)}")
        for name, array in own.items():
            if name in state:
                given = np.asarray(state[name])
                if given.shape != array.shape or given.dtype != array.dtype:
                    problems.append(f"{name} expected {array.dtype}{list(array.shape)}, "
                                    f"got {given.dtype}{list(given.shape)}")
        if problems:
            raise ValueError(f"state dict does not match the network: {'; '.join(problems)}")
        for name, array in own.items():
            np.copyto(array, state[name])

    def __repr__(self) -> str:
        lines = [f"  ({i}) {type(layer).__name__}({layer.extra_repr()})" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
