"""Optimizer behaviour the golden-value tests of test_optimizers.py do not reach: the cache-blocked update of large
parameters, odd memory layouts, resume edge cases (t = 0, Fortran-order slots, no shared arrays), the slots each
rule grows, the defaults, and how `bias_correction` is read from a config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlcli.config.load import load_config_text
from mlcli.errors import ConfigError
from mlcli.optim import optimizers as optimizers_module
from mlcli.optim.optimizers import BLOCK, Adam, RMSProp
from mlcli.optim.registry import make_optimizer

CONFIGS = [
    ("sgd", {"lr": 0.1}),
    ("momentum", {"lr": 0.1, "momentum": 0.8}),
    ("nesterov", {"lr": 0.1, "momentum": 0.8}),
    ("adagrad", {"lr": 0.1, "eps": 1e-7}),
    ("rmsprop", {"lr": 0.01, "beta": 0.8, "eps": 1e-7}),
    ("rmsprop", {"lr": 0.01, "beta": 0.8, "eps": 1e-7, "momentum": 0.7}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 1e-7}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 1e-7, "bias_correction": False}),
]
IDS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_momentum", "adam", "adam_no_bc"]


def reference_steps(kind: str, hyper: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """The textbook rules (DESIGN.md's exact definitions), one whole-array NumPy expression per line."""
    w = w.astype(np.float64).copy()
    lr = hyper["lr"]
    eps = hyper.get("eps", 1e-7)
    v = np.zeros_like(w)
    a = np.zeros_like(w)
    m = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if kind == "sgd":
            w = w - lr * g
        elif kind in ("momentum", "nesterov"):
            mu = hyper["momentum"]
            v_prev = v
            v = mu * v - lr * g
            w = w + v if kind == "momentum" else w - mu * v_prev + (1 + mu) * v
        elif kind == "adagrad":
            a = a + g * g
            w = w - lr * g / (np.sqrt(a) + eps)
        elif kind == "rmsprop":
            beta, mu = hyper["beta"], hyper.get("momentum", 0.0)
            a = beta * a + (1 - beta) * g * g
            if mu > 0:
                v = mu * v - lr * g / (np.sqrt(a) + eps)
                w = w + v
            else:
                w = w - lr * g / (np.sqrt(a) + eps)
        elif kind == "adam":
            b1, b2 = hyper["beta1"], hyper["beta2"]
            m = b1 * m + (1 - b1) * g
            a = b2 * a + (1 - b2) * g * g
            if hyper.get("bias_correction", True):
                w = w - lr * (m / (1 - b1**t)) / (np.sqrt(a / (1 - b2**t)) + eps)
            else:
                w = w - lr * m / (np.sqrt(a) + eps)
    return w


def gradients(shape: tuple[int, ...], steps: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


# A size that is not a multiple of BLOCK: two whole blocks and a short last one.
LARGE = (2 * BLOCK + 4321) // 7 * 7
LARGE_SHAPE = (7, LARGE // 7)


@pytest.mark.parametrize(("kind", "hyper"), CONFIGS, ids=IDS)
def test_large_parameter_takes_the_textbook_update_in_every_block(kind, hyper):
    """A parameter over BLOCK elements is updated block by block: every element, the block edges included, must
    get the same update as the whole-array rule."""
    assert LARGE > 2 * BLOCK
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal(LARGE_SHAPE)
    grads = gradients(LARGE_SHAPE, 3)
    w = w0.copy()
    opt = make_optimizer(kind, **hyper)
    for g in grads:
        opt.step({"w": w}, {"w": g})
    np.testing.assert_allclose(w, reference_steps(kind, hyper, w0, grads), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("kind", "hyper"), CONFIGS, ids=IDS)
def test_blocked_update_equals_the_unblocked_one_bit_for_bit(kind, hyper, monkeypatch):
    """The module promises the blocks change nothing: same bits as one whole-array update (BLOCK raised)."""
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(LARGE_SHAPE).astype(np.float32)
    grads = [g.astype(np.float32) for g in gradients(LARGE_SHAPE, 3)]

    def run() -> np.ndarray:
        w = w0.copy()
        opt = make_optimizer(kind, **hyper)
        for g in grads:
            opt.step({"w": w}, {"w": g})
        return w

    blocked = run()
    monkeypatch.setattr(optimizers_module, "BLOCK", 4 * LARGE)
    whole = run()
    assert blocked.dtype == np.float32
    np.testing.assert_array_equal(blocked, whole)


@pytest.mark.parametrize(("kind", "hyper"), CONFIGS, ids=IDS)
def test_non_contiguous_large_parameter_is_updated_in_place(kind, hyper):
    """A view over BLOCK elements that cannot be flattened without a copy (the first columns of a wider array) is
    updated through the view; the other columns stay as they were."""
    rng = np.random.default_rng(3)
    cols = LARGE_SHAPE[1]
    base = rng.standard_normal((7, cols + 5))
    untouched = base[:, cols:].copy()
    w = base[:, :cols]
    assert not w.flags.c_contiguous and w.size > BLOCK
    assert not np.shares_memory(w.reshape(-1), w)  # flattening it would copy
    w0 = w.copy()
    grads = gradients(w.shape, 3)
    opt = make_optimizer(kind, **hyper)
    for g in grads:
        opt.step({"w": w}, {"w": g})
    np.testing.assert_allclose(base[:, :cols], reference_steps(kind, hyper, w0, grads), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(base[:, cols:], untouched)


@pytest.mark.parametrize(("kind", "hyper"), CONFIGS, ids=IDS)
def test_non_contiguous_large_gradient_is_used_whole(kind, hyper):
    """A C-contiguous parameter with a strided gradient view (e.g. a transposed product) gets the full update."""
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal(LARGE_SHAPE)
    grads = [np.ascontiguousarray(g.T).T for g in gradients(LARGE_SHAPE, 3)]  # Fortran-order gradients
    assert not grads[0].flags.c_contiguous
    w = w0.copy()
    opt = make_optimizer(kind, **hyper)
    for g in grads:
        opt.step({"w": w}, {"w": g})
    np.testing.assert_allclose(w, reference_steps(kind, hyper, w0, grads), rtol=1e-12, atol=1e-12)


STATEFUL = [(k, h) for k, h in CONFIGS if k != "sgd"]
STATEFUL_IDS = IDS[1:]


@pytest.mark.parametrize(("kind", "hyper"), STATEFUL, ids=STATEFUL_IDS)
def test_resume_with_fortran_order_slots_of_a_large_parameter_is_exact(kind, hyper):
    """A checkpoint may hand back slots in Fortran order (or another dtype): after loading, the next steps must
    still update the optimizer's own slots, giving the uninterrupted run's arrays bit for bit."""
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal(LARGE_SHAPE)
    grads = gradients(LARGE_SHAPE, 4)

    straight = w0.copy()
    opt = make_optimizer(kind, **hyper)
    for g in grads:
        opt.step({"w": straight}, {"w": g})

    resumed = w0.copy()
    first = make_optimizer(kind, **hyper)
    first.step({"w": resumed}, {"w": grads[0]})
    state = first.state_dict()
    state["slots"]["w"] = {s: np.asfortranarray(a) for s, a in state["slots"]["w"].items()}
    second = make_optimizer(kind, **hyper)
    second.load_state_dict(state)
    for g in grads[1:]:
        second.step({"w": resumed}, {"w": g})
    np.testing.assert_array_equal(resumed, straight)


@pytest.mark.parametrize(("kind", "hyper"), CONFIGS, ids=IDS)
def test_resume_from_a_state_saved_before_the_first_step(kind, hyper):
    """Ctrl-C during a fresh run's first epoch saves t = 0 and no slots: loading it must work and continue as a
    fresh optimizer would (Adam's bias correction counts from step 1)."""
    fresh = make_optimizer(kind, **hyper)
    state = fresh.state_dict()
    assert state["t"] == 0 and state["slots"] == {}
    loaded = make_optimizer(kind, **hyper)
    loaded.load_state_dict(state)
    assert loaded.t == 0
    w0 = np.linspace(-1, 1, 12).reshape(3, 4)
    grads = gradients((3, 4), 2)
    w = w0.copy()
    for g in grads:
        loaded.step({"w": w}, {"w": g})
    np.testing.assert_allclose(w, reference_steps(kind, hyper, w0, grads), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("t", [-1, True, 1.0, None])
def test_load_state_dict_refuses_a_bad_step_count(t):
    state = Adam(lr=0.1).state_dict()
    state["t"] = t
    with pytest.raises(ValueError, match="'t' must be an int >= 0"):
        Adam(lr=0.1).load_state_dict(state)


@pytest.mark.parametrize(("kind", "hyper"), STATEFUL, ids=STATEFUL_IDS)
def test_loaded_state_shares_no_array_with_the_callers_dict(kind, hyper):
    """Stepping after a load must not write into the dict that was loaded (it may be reused, e.g. a checkpoint's
    arrays kept for a second resume), and changing that dict afterwards must not reach the optimizer."""
    w = np.linspace(-1, 1, 6)
    opt = make_optimizer(kind, **hyper)
    opt.step({"w": w}, {"w": np.ones(6)})
    state = opt.state_dict()
    kept = {s: a.copy() for s, a in state["slots"]["w"].items()}
    loaded = make_optimizer(kind, **hyper)
    loaded.load_state_dict(state)
    for s, a in loaded.slots["w"].items():
        assert not np.shares_memory(a, state["slots"]["w"][s])
    loaded.step({"w": w.copy()}, {"w": np.full(6, 2.0)})
    for s, a in state["slots"]["w"].items():
        np.testing.assert_array_equal(a, kept[s])
    before = {s: a.copy() for s, a in loaded.slots["w"].items()}
    for a in state["slots"]["w"].values():
        a[...] = 123.0
    for s, a in loaded.slots["w"].items():
        np.testing.assert_array_equal(a, before[s])


@pytest.mark.parametrize(("kind", "hyper"), STATEFUL, ids=STATEFUL_IDS)
def test_state_dict_is_a_snapshot(kind, hyper):
    w = np.linspace(-1, 1, 6)
    opt = make_optimizer(kind, **hyper)
    opt.step({"w": w}, {"w": np.ones(6)})
    state = opt.state_dict()
    kept = {s: a.copy() for s, a in state["slots"]["w"].items()}
    opt.step({"w": w}, {"w": np.ones(6)})
    for s, a in state["slots"]["w"].items():
        np.testing.assert_array_equal(a, kept[s])


def test_rmsprop_without_momentum_keeps_only_the_average():
    """momentum = 0 (the default) is plain RMSProp: one slot per parameter, and a state with a velocity is not
    its state."""
    opt = RMSProp(lr=0.01)
    assert opt.momentum == 0.0
    opt.step({"w": np.ones(3)}, {"w": np.ones(3)})
    assert set(opt.slots["w"]) == {"a"}
    assert set(opt.state_dict()["slots"]["w"]) == {"a"}
    with_velocity = RMSProp(lr=0.01, momentum=0.5)
    with_velocity.step({"w": np.ones(3)}, {"w": np.ones(3)})
    assert set(with_velocity.slots["w"]) == {"a", "v"}
    with pytest.raises(ValueError, match="must be \\['a'\\]"):
        RMSProp(lr=0.01).load_state_dict(with_velocity.state_dict())


def test_defaults_match_the_documented_rules():
    """The defaults a config without them gets: RMSProp beta 0.9, Adam 0.9/0.999, eps 1e-7, momentum 0.9."""
    rms = RMSProp(lr=0.1)
    assert (rms.beta, rms.eps, rms.momentum) == (0.9, 1e-7, 0.0)
    adam = Adam(lr=0.1)
    assert (adam.beta1, adam.beta2, adam.eps, adam.bias_correction) == (0.9, 0.999, 1e-7, True)
    assert make_optimizer("momentum", lr=0.1).momentum == 0.9
    assert make_optimizer("nesterov", lr=0.1).momentum == 0.9
    assert make_optimizer("adagrad", lr=0.1).eps == 1e-7
    # and one default RMSProp step is the rule with beta = 0.9: a = 0.1 g^2
    w, g = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    rms.step({"w": w}, {"w": g})
    np.testing.assert_allclose(w, np.array([1.0, -2.0]) - 0.1 * g / (np.sqrt(0.1 * g * g) + 1e-7), rtol=1e-14)


EXAMPLE = Path(__file__).resolve().parent.parent / "mlcli" / "examples" / "adam_no_bias_correction.yaml"


@pytest.mark.parametrize("value", ["no", "off", "'false'", "0", "1"])
def test_config_refuses_a_bias_correction_that_is_not_a_boolean(value):
    """YAML 1.1 would read `no` as false; mlcli's reader keeps it a string and the strict schema refuses it (and
    0/1), rather than taking any non-empty string as true."""
    text = EXAMPLE.read_text()
    assert "bias_correction: false" in text
    with pytest.raises(ConfigError, match="bias_correction"):
        load_config_text(text.replace("bias_correction: false", f"bias_correction: {value}"), "test.yaml")


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("true", True), ("False", False)])
def test_config_bias_correction_booleans_reach_adam(value, expected):
    text = EXAMPLE.read_text().replace("bias_correction: false", f"bias_correction: {value}")
    cfg = load_config_text(text, "test.yaml").train.optimizer
    opt = make_optimizer(cfg.type, **cfg.model_dump(exclude={"type"}))
    assert opt.bias_correction is expected


@pytest.mark.parametrize("value", ["no", "false", 0, 1, None])
def test_adam_refuses_a_bias_correction_that_is_not_a_boolean(value):
    with pytest.raises(TypeError, match="bias_correction must be true or false"):
        Adam(lr=0.1, bias_correction=value)


def test_adam_takes_numpy_booleans():
    assert Adam(lr=0.1, bias_correction=np.bool_(False)).bias_correction is False


@pytest.mark.parametrize(
    ("kind", "hyper"),
    [
        ("momentum", {"momentum": 0.0}),
        ("nesterov", {"momentum": 0.0}),
        ("rmsprop", {"beta": 0.0, "momentum": 0.0}),
        ("adam", {"beta1": 0.0, "beta2": 0.0}),
        ("adagrad", {"eps": 1e-300}),
        ("sgd", {"lr": 1e-300}),
    ],
)
def test_closed_lower_bounds_are_accepted(kind, hyper):
    """0 is a valid momentum or beta (plain SGD / no averaging): the intervals are [0, 1)."""
    hyper = {"lr": 0.1, **hyper}
    opt = make_optimizer(kind, **hyper)
    for name, value in hyper.items():
        assert getattr(opt, name) == value


@pytest.mark.parametrize(
    ("kind", "hyper", "message"),
    [
        ("momentum", {"momentum": 1.0}, "momentum must be in \\[0, 1\\)"),
        ("nesterov", {"momentum": 1.0}, "momentum must be in \\[0, 1\\)"),
        ("nesterov", {"momentum": -0.1}, "momentum must be in \\[0, 1\\)"),
        ("rmsprop", {"beta": 1.0}, "beta must be in \\[0, 1\\)"),
        ("rmsprop", {"momentum": 1.0}, "momentum must be in \\[0, 1\\)"),
        ("rmsprop", {"eps": 0.0}, "eps must be > 0"),
        ("adagrad", {"eps": 0.0}, "eps must be > 0"),
        ("adam", {"beta1": 1.0}, "beta1 must be in \\[0, 1\\)"),
        ("adam", {"beta2": 1.0}, "beta2 must be in \\[0, 1\\)"),
        ("adam", {"eps": 0.0}, "eps must be > 0"),
        ("adam", {"eps": float("inf")}, "eps must be > 0"),
        ("sgd", {"lr": 0.0}, "lr must be > 0"),
        ("sgd", {"lr": float("nan")}, "lr must be > 0"),
    ],
)
def test_open_bounds_are_refused(kind, hyper, message):
    with pytest.raises(ValueError, match=message):
        make_optimizer(kind, **{"lr": 0.1, **hyper})


def test_load_state_dict_refuses_a_bad_lr_or_slots():
    state = Adam(lr=0.1).state_dict()
    with pytest.raises(ValueError, match="optimizer state 'lr' must be > 0"):
        Adam(lr=0.1).load_state_dict({**state, "lr": 0.0})
    with pytest.raises(TypeError, match="'slots' must be a dict, got list"):
        Adam(lr=0.1).load_state_dict({**state, "slots": []})


def test_only_newton_asks_for_the_full_batch():
    """First-order rules train on mini-batches; the trainer hands the whole set only to full-batch methods."""
    for kind in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"):
        assert make_optimizer(kind, lr=0.1).full_batch is False
    assert make_optimizer("newton").full_batch is True


def test_the_base_class_has_no_rule():
    with pytest.raises(NotImplementedError):
        optimizers_module.Optimizer(lr=0.1).step({"w": np.ones(2)}, {"w": np.ones(2)})
