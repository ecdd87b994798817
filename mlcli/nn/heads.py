"""`Heads`: several networks on the same input, their outputs side by side (the heads of a multitask model).

    heads = Heads({"digit": Sequential([...Linear(64, 10)]), "parity": Sequential([...Linear(64, 2)])})
    y = heads.forward(h, train)      # h (B, F) -> y (B, 12): columns 0:10 the digit head's, 10:12 parity's
    dh = heads.backward(dy)          # dy (B, 12) -> dh (B, F) = sum over heads of each head's dL/dh

Put after a trunk in a `Sequential`, the trunk's gradient is the sum of what every head sends back, as the chain
rule for a shared input says. Parameters are named `<head>.<index>.<kind>.<param>` inside the layer, so in the
network `3.heads.digit.0.linear.W`.
"""

from __future__ import annotations

import numpy as np

from mlcli.nn.base import Layer
from mlcli.nn.network import Sequential


class Heads(Layer):
    """Named sub-networks applied to the same input; `slices[name]` are their columns of the output."""

    kind = "heads"

    def __init__(self, heads: dict[str, Sequential], widths: dict[str, int]) -> None:
        super().__init__()
        self.heads = dict(heads)
        self.slices: dict[str, slice] = {}
        start = 0
        for name in self.heads:
            self.slices[name] = slice(start, start + int(widths[name]))
            start += int(widths[name])
        self.width = start
        self.params = self._named("params")
        self.grads = self._named("grads")
        self.buffers = self._named("buffers")

    def _named(self, attribute: str) -> dict[str, np.ndarray]:
        return {f"{name}.{key}": array for name, net in self.heads.items()
                for key, array in getattr(net, attribute)().items()}

    @property
    def layers(self) -> list[Layer]:
        """Every head's layers, heads in order (for code that inspects a network's layers)."""
        return [layer for net in self.heads.values() for layer in net.layers]

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """x: (B, F) -> (B, sum of the heads' widths)."""
        outs = [net.forward(x, train) for net in self.heads.values()]
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy: (B, width) -> dL/dx (B, F), the sum of the heads' input gradients (heads in order)."""
        dx = None
        for name, net in self.heads.items():
            part = net.backward(np.ascontiguousarray(dy[:, self.slices[name]]), input_grad=True)
            dx = part if dx is None else dx + part
        return dx

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.width,)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}: {s.stop - s.start}" for name, s in self.slices.items())
