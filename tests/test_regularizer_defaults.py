"""Penalty defaults: asking for one penalty must not switch on the other."""

from __future__ import annotations

import numpy as np

from mlcli.optim.regularizers import add_penalty_grads, penalty


def test_l2_alone_adds_no_l1_term():
    params = {"0.linear.W": np.array([[1.0, -2.0]]), "0.linear.b": np.array([3.0])}
    grads = {"0.linear.W": np.zeros((1, 2)), "0.linear.b": np.zeros(1)}
    add_penalty_grads(params, grads, l2=0.5)
    np.testing.assert_array_equal(grads["0.linear.W"], [[0.5, -1.0]])
    np.testing.assert_array_equal(grads["0.linear.b"], [0.0])
    assert penalty(params, l2=0.5) == 0.25 * 5


def test_l1_alone_adds_no_l2_term():
    params = {"0.linear.W": np.array([[1.0, -2.0]])}
    grads = {"0.linear.W": np.zeros((1, 2))}
    add_penalty_grads(params, grads, l1=0.1)
    np.testing.assert_allclose(grads["0.linear.W"], [[0.1, -0.1]])
    assert penalty(params, l1=0.1) == 0.1 * 3


def test_no_strength_is_no_penalty():
    params = {"0.linear.W": np.array([[1.0, -2.0]])}
    grads = {"0.linear.W": np.zeros((1, 2))}
    add_penalty_grads(params, grads)
    np.testing.assert_array_equal(grads["0.linear.W"], 0.0)
    assert penalty(params) == 0.0
