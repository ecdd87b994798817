"""Exact behaviour of the NumPy core that the gradient checks and the layer tests do not pin down, one test per
gap that `tools/mutate.py` found in nn/functional.py, network.py, heads.py, base.py and gradcheck.py.

The boundaries at exactly x = 0 (central differences never look there), the threaded path of ReLU for large
batches against the one-call path, the parameter gradients of evaluation-mode BatchNorm2d, the defaults of dropout,
`Sequential.predict`, `forward_until` and `Heads.forward`, the representation, and the bookkeeping of the gradient
checks (kinks, refined steps, the sample of coordinates). Every test is small: the file runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn import functional as F
from mlcli.nn import parallel
from mlcli.nn.activations import ELU, LeakyReLU, PReLU, ReLU
from mlcli.nn.base import Layer
from mlcli.nn.gradcheck import GradCheck, check_layer, gradcheck_network, numerical_gradient, rel_error
from mlcli.nn.heads import Heads
from mlcli.nn.layers import BatchNorm1d, BatchNorm2d, Dropout, Flatten, Linear
from mlcli.nn.network import Sequential

F64 = np.float64


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------- activations at x = 0


def test_leaky_relu_forward_is_identity_on_positives_below_one():
    y, _ = F.leaky_relu_forward(np.array([-2.0, 0.0, 0.25, 0.5, 1.0, 3.0]), 0.25)
    np.testing.assert_array_equal(y, [-0.5, 0.0, 0.25, 0.5, 1.0, 3.0])


def test_leaky_relu_gradient_at_zero_is_the_slope():
    layer = LeakyReLU(0.25)
    layer.forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(layer.backward(np.array([4.0, 8.0, 7.0])), [1.0, 2.0, 7.0])


def test_prelu_gradient_at_zero_is_the_slope_and_adds_nothing_to_dalpha():
    layer = PReLU(2, init=0.25, dtype=F64)
    x = np.array([[0.0, -2.0], [1.0, 0.0]])
    np.testing.assert_array_equal(layer.forward(x), [[0.0, -0.5], [1.0, 0.0]])
    dx = layer.backward(np.array([[4.0, 1.0], [2.0, 8.0]]))
    np.testing.assert_array_equal(dx, [[1.0, 0.25], [2.0, 2.0]])
    np.testing.assert_array_equal(layer.grads["alpha"], [0.0, -2.0])


def test_elu_gradient_at_zero_is_alpha():
    layer = ELU(0.5)
    np.testing.assert_array_equal(layer.forward(np.array([-np.log(2.0), 0.0, 0.5])), [-0.25, 0.0, 0.5])
    np.testing.assert_allclose(layer.backward(np.array([2.0, 2.0, 2.0])), [0.5, 1.0, 2.0], rtol=0, atol=1e-15)


# -------------------------------------------------------------------------- ReLU: the threaded large path


def _large(seed: int = 0) -> np.ndarray:
    """A float32 batch of exactly MIN_ELEMENTS entries (the threaded path), with exact zeros and values in (0, 1]."""
    x = rng(seed).uniform(-1.0, 1.0, (512, parallel.MIN_ELEMENTS // 512)).astype(np.float32)
    x[::7, ::3] = 0.0
    return x


@pytest.mark.parametrize("threads", ["1", "4"])
def test_relu_large_batches_give_the_bits_of_the_one_call_path(monkeypatch, threads):
    monkeypatch.setenv("MLCLI_NUM_THREADS", threads)
    x = _large()
    assert x.size >= parallel.MIN_ELEMENTS
    y, cache = F.relu_forward(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    dy = rng(1).standard_normal(x.shape).astype(np.float32)
    dx = F.relu_backward(dy, cache)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, np.multiply(dy, x > 0))
    # the same rows through the one-call path (below MIN_ELEMENTS) give the same bits
    ys, cs = F.relu_forward(x[:8])
    np.testing.assert_array_equal(ys, y[:8])
    np.testing.assert_array_equal(F.relu_backward(dy[:8], cs), dx[:8])


def test_relu_layer_gradient_at_zero_is_zero_on_large_batches():
    layer = ReLU()
    x = _large(2)
    layer.forward(x)
    dx = layer.backward(np.ones_like(x))
    assert dx[x == 0].sum() == 0 and (dx[x > 0] == 1).all()


# ------------------------------------------------------------------------------------------------- dropout


def test_dropout_forward_is_inverted_by_default():
    x = np.ones((50, 40))
    y, mask = F.dropout_forward(x, 0.2, rng(3))
    assert set(np.unique(mask)) == {0.0, 1.25}
    np.testing.assert_array_equal(y, mask)
    _, plain = F.dropout_forward(x, 0.2, rng(3), inverted=False)
    np.testing.assert_array_equal(mask, plain * 1.25)


# -------------------------------------------------------------------------------- BatchNorm2d, evaluation


def test_batchnorm2d_eval_gradients_of_every_array_match_numerical():
    r = rng(4)
    bn = BatchNorm2d(3, dtype=F64)
    bn.params["gamma"][...] = r.uniform(0.5, 1.5, 3)
    bn.params["beta"][...] = r.standard_normal(3)
    bn.buffers["running_mean"][...] = r.standard_normal(3)
    bn.buffers["running_var"][...] = r.uniform(0.5, 2.0, 3)
    errors = check_layer(bn, r.standard_normal((2, 3, 3, 4)), r, train=False)
    assert set(errors) == {"x", "gamma", "beta"}
    assert max(errors.values()) < 1e-7, errors


def test_batchnorm2d_eval_backward_values():
    x = np.arange(8, dtype=F64).reshape(2, 1, 2, 2)
    cache = F.batchnorm2d_inference_forward(x, np.array([2.0]), np.array([0.5]), np.array([3.0]), np.array([3.0]),
                                            1.0)[1]
    dx, dgamma, dbeta = F.batchnorm2d_inference_backward(np.full(x.shape, 2.0), cache)
    np.testing.assert_array_equal(dx, np.full(x.shape, 2.0))  # gamma / sqrt(3 + 1) = 1
    np.testing.assert_array_equal(dgamma, [2.0 * (x - 3.0).sum() / 2.0])  # 2 * sum(x - 3) * inv_std 0.5
    np.testing.assert_array_equal(dbeta, [16.0])


# ---------------------------------------------------------------------------------------------- Sequential


class Recorder(Layer):
    """The identity, recording the batch sizes and modes it was called with."""

    kind = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self.calls.append((len(x), train))
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy


def _noisy_net(seed: int = 0) -> Sequential:
    """Linear -> BatchNorm1d -> Dropout -> Recorder: training mode changes every output."""
    r = rng(seed)
    bn = BatchNorm1d(5, dtype=F64)
    bn.buffers["running_mean"][...] = r.standard_normal(5)
    bn.buffers["running_var"][...] = r.uniform(0.5, 2.0, 5)
    return Sequential([Linear(3, 5, rng=r, dtype=F64), bn, Dropout(0.5, rng=rng(seed + 1)), Recorder()])


def test_predict_batches_1024_by_default_and_concatenates():
    net = _noisy_net()
    x = rng(5).standard_normal((1025, 3))
    y = net.predict(x)
    assert net.layers[-1].calls == [(1024, False), (1, False)]
    np.testing.assert_allclose(y, net.forward(x, train=False), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [4, 5, 11])
def test_predict_is_the_evaluation_forward_for_any_batch_size(n):
    net = _noisy_net()
    x = rng(6).standard_normal((n, 3))
    expected = net.forward(x, train=False)
    net.layers[-1].calls.clear()
    y = net.predict(x, batch_size=5)
    assert all(train is False for _, train in net.layers[-1].calls)
    assert [size for size, _ in net.layers[-1].calls] == ([n] if n <= 5 else [5, 5, 1])
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_forward_until_runs_in_evaluation_mode_by_default():
    net = _noisy_net()
    x = rng(7).standard_normal((6, 3))
    np.testing.assert_array_equal(net.forward_until(x, 3), net.forward_until(x, 3, train=False))
    np.testing.assert_array_equal(net.forward_until(x, 3), net.forward(x)[:, :])
    assert net.layers[-1].calls[-1] == (6, False)
    before = net.layers[1].buffers["running_mean"].copy()
    net.forward_until(x, 2)
    np.testing.assert_array_equal(net.layers[1].buffers["running_mean"], before)  # no batch statistics taken


def test_backward_without_input_gradient_through_a_network_without_parameters():
    net = Sequential([Flatten(), ReLU()])
    x = rng(8).standard_normal((2, 3, 2))
    net.forward(x, train=True)
    assert net.backward(np.ones((2, 6)), input_grad=False) is None
    assert net.backward(np.ones((2, 6))).shape == (2, 3, 2)


def test_repr_lists_the_layers():
    net = Sequential([Linear(3, 2, rng=rng()), ReLU(), Dropout(0.5, rng=rng())])
    assert repr(net) == "Sequential(\n  (0) Linear(in=3, out=2, bias=True)\n  (1) ReLU()\n  (2) Dropout(p=0.5)\n)"


# --------------------------------------------------------------------------------------------------- Heads


def _heads(names: tuple[str, ...]) -> Heads:
    nets = {name: Sequential([Linear(4, 2 + i, rng=rng(i), dtype=F64), Dropout(0.5, rng=rng(10 + i))])
            for i, name in enumerate(names)}
    return Heads(nets, {name: 2 + i for i, name in enumerate(names)})


@pytest.mark.parametrize("names", [("a",), ("a", "b")])
def test_heads_forward_is_evaluation_by_default(names):
    heads = _heads(names)
    x = rng(9).standard_normal((3, 4))
    y = heads.forward(x)
    np.testing.assert_array_equal(y, heads.forward(x, train=False))
    expected = [net.forward(x, train=False) for net in heads.heads.values()]
    np.testing.assert_array_equal(y, np.concatenate(expected, axis=1))
    assert y.shape == (3, heads.width)


def test_heads_with_one_head_return_its_output():
    heads = _heads(("only",))
    x = rng(11).standard_normal((3, 4))
    np.testing.assert_array_equal(heads.forward(x), heads.heads["only"].forward(x))
    assert heads.output_shape((4,)) == (2,) and heads.extra_repr() == "only: 2"


# ---------------------------------------------------------------------------------------------------- base


def test_the_base_layer_refuses_to_run():
    layer = Layer()
    with pytest.raises(NotImplementedError):
        layer.forward(np.ones((1, 2)))
    with pytest.raises(NotImplementedError):
        layer.backward(np.ones((1, 2)))
    assert layer.output_shape((2, 3)) == (2, 3) and layer.extra_repr() == ""
    assert layer.params == layer.grads == layer.buffers == {} and layer.cache is None


# ----------------------------------------------------------------------------------------------- gradcheck

H = 1e-5  # the default step of numerical_gradient and gradcheck_network


def _weighted_sum(out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    return float(np.sum(out * y)), y


def _absolute_sum(out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    return float(np.sum(np.abs(out))), np.sign(out)


def test_rel_error_has_an_absolute_floor_of_1e_8():
    assert rel_error(np.array([1e-10]), np.array([0.0])) == pytest.approx(1e-2, rel=1e-12)
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5, rel=1e-12)


def test_numerical_gradient_steps_by_1e_5_by_default_and_needs_a_contiguous_array():
    x = np.array([H / 2])  # |x| over [x - h, x + h]: (1.5 h - 0.5 h) / 2h = 0.5 for the step h = 1e-5 only
    np.testing.assert_allclose(numerical_gradient(lambda: float(np.abs(x).sum()), x), [0.5], rtol=1e-9)
    grid = np.zeros((3, 4))
    with pytest.raises(ValueError, match="contiguous"):
        numerical_gradient(lambda: float(grid.sum()), grid.T)


def test_gradcheck_network_steps_by_1e_5_by_default():
    report = gradcheck_network(Sequential([Recorder()]), _absolute_sum, np.array([[H / 2]]), None)
    # analytic 1 (the sign), numerical 0.5 as above: ||1 - 0.5|| / (1 + 0.5)
    assert report["input"].error == pytest.approx(1 / 3, rel=1e-9)


def test_check_layer_and_gradcheck_network_run_in_training_mode():
    layer = Recorder()
    errors = check_layer(layer, rng(12).standard_normal((2, 3)), rng(13))
    assert errors == {"x": pytest.approx(0.0, abs=1e-9)}
    assert layer.calls and all(train is True for _, train in layer.calls)
    net = Sequential([Linear(3, 2, rng=rng(14), dtype=F64), Recorder()])
    gradcheck_network(net, _weighted_sum, rng(15).standard_normal((2, 3)), rng(16).standard_normal((2, 2)))
    assert net.layers[1].calls and all(train is True for _, train in net.layers[1].calls)


KINKED = {
    "relu": ReLU,
    "leaky_relu": lambda: LeakyReLU(0.25),
    "prelu": lambda: PReLU(1, init=0.25, dtype=F64),
    "elu": lambda: ELU(0.5),
}


@pytest.mark.parametrize("kind", sorted(KINKED))
def test_kinks_are_left_out_and_near_kinks_refined_by_the_side_backward_puts_zero_on(kind):
    """Inputs 0 and 0.095 h: the steps h and h/10 both cross the kink -> left out (kinks). Inputs h and 0.105 h: h
    crosses (at h the -h pass lands exactly on 0, which is on the x <= 0 side, as the backward has it), h/10 does
    not -> compared with h/10 (refined). Inputs 1 and -1: smooth."""
    layer = KINKED[kind]()
    assert layer.kind == kind
    x = np.array([[0.0, 0.095 * H, 0.105 * H, H, 1.0, -1.0]])
    report = gradcheck_network(Sequential([layer]), _weighted_sum, x, rng(17).standard_normal(x.shape))
    assert report["input"] == GradCheck((1, 6), report["input"].error, 4, 2, 2)
    assert all(check.passed() for check in report.values()), report


def test_an_array_whose_every_coordinate_sits_on_a_kink_has_error_0_and_fails():
    report = gradcheck_network(Sequential([ReLU()]), _weighted_sum, np.zeros((1, 2)), np.ones((1, 2)))
    assert report["input"] == GradCheck((1, 2), 0.0, 0, 2, 0)
    assert not report["input"].passed()


def test_gradcheck_defaults_and_pass_rule():
    assert GradCheck((2,), 0.0, 2, 0).refined == 0
    assert GradCheck((2,), 1e-6, 2, 0).passed() and not GradCheck((2,), 1.5e-6, 2, 0).passed()
    assert GradCheck((2,), 3e-6, 2, 0).passed(4e-6)
    assert not GradCheck((2,), 1e-3, 2, 0).passed()
    assert GradCheck((2,), 0.0, 0, 0).passed()  # nothing to compare and nothing left out: an empty array
    assert not GradCheck((2,), 0.0, 0, 1).passed() and not GradCheck((2,), 0.0, 0, 3).passed()
    assert GradCheck((2,), 0.0, 1, 2).passed()


def _sampled(rng_arg: np.random.Generator | None) -> tuple[list[int], dict[str, GradCheck]]:
    """The coordinates of W that gradcheck_network perturbs with max_coords=5 (input 5, W 15, b 3 entries)."""
    net = Sequential([Linear(5, 3, rng=rng(18), dtype=F64)])
    W = net.params()["0.linear.W"]
    W0 = W.copy()
    seen: list[int] = []

    def loss(out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        seen.extend(int(i) for i in np.flatnonzero(W != W0) if int(i) not in seen)
        return _weighted_sum(out, y)

    report = gradcheck_network(net, loss, rng(19).standard_normal((1, 5)), rng(20).standard_normal((1, 3)),
                               max_coords=5, rng=rng_arg)
    return seen, report


def test_max_coords_samples_only_larger_arrays_without_replacement_from_seed_0_by_default():
    seen, report = _sampled(None)
    # the input has exactly max_coords entries: all checked, and the generator is left for W
    assert seen == sorted(np.random.default_rng(0).choice(15, size=5, replace=False).tolist())
    assert report["input"].checked == 5 and report["0.linear.W"].checked == 5 and report["0.linear.b"].checked == 3
    assert seen != list(range(5))
    seen3, _ = _sampled(np.random.default_rng(3))
    assert seen3 == sorted(np.random.default_rng(3).choice(15, size=5, replace=False).tolist()) != seen
