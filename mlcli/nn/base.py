"""The layer contract every NumPy layer of mlcli follows.

A layer turns a batch into a batch: `forward(x, train) -> y` and `backward(dy) -> dx`. Between the two it keeps in
`self.cache` exactly what backward needs. Three kinds of state live in three places:

- `params`  (dict name -> array): learned, optimized and saved; the optimizer updates these arrays in place.
- `grads`   (dict name -> array): filled by `backward`, same keys and shapes as `params`.
- `buffers` (dict name -> array): saved but never optimized (batchnorm running statistics).

`kind` is the short name used in dotted parameter names (`"0.linear.W"`) and in checkpoints. Layers never touch
global random state: a layer that needs randomness (dropout) holds a `numpy.random.Generator` given to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Layer:
    """Base class: a layer without parameters that passes its input through.

    Subclasses set `kind`, fill `params`/`buffers` in `__init__` and implement `forward`/`backward`.
    """

    kind = "layer"

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.cache: Any = None

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Map a batch `x` to the layer's output; `train` selects training behaviour (dropout, batch stats)."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Given dL/dy for the last forward, fill `self.grads` and return dL/dx."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one sample's output given one sample's input shape (no batch axis)."""
        return input_shape

    def extra_repr(self) -> str:
        """Hyperparameters shown in summaries, e.g. `in=64, out=10`."""
        return ""
