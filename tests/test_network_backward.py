"""Training skips the input gradient: the parameter gradients must not change because of it."""

from __future__ import annotations

import numpy as np

from mlcli.nn.activations import ReLU
from mlcli.nn.layers import Flatten, Linear
from mlcli.nn.network import Sequential


def test_flatten_first_network_skips_the_input_gradient_with_identical_parameter_grads():
    rng = np.random.default_rng(0)
    net = Sequential([Flatten(), Linear(12, 5, rng=rng, dtype=np.float64), ReLU(),
                      Linear(5, 3, rng=rng, dtype=np.float64)])
    x = rng.normal(size=(4, 3, 4))
    dy = rng.normal(size=(4, 3))
    net.forward(x, train=True)
    dx = net.backward(dy, input_grad=True)
    assert dx.shape == x.shape
    full = {k: v.copy() for k, v in net.grads().items()}
    net.forward(x, train=True)
    assert net.backward(dy, input_grad=False) is None
    for name, grad in net.grads().items():
        np.testing.assert_array_equal(grad, full[name])
