"""Learning-rate schedules: values at chosen epochs, warmup, SGDR restarts, and option validation."""

from __future__ import annotations

import math

import pytest

from mlcli.optim import SCHEDULES, make_schedule


def values(schedule, epochs):
    return [schedule(e) for e in epochs]


def test_registry_keys():
    assert set(SCHEDULES) == {"constant", "step", "exponential", "cosine", "cosine_restarts"}


def test_constant():
    assert values(make_schedule("constant", base_lr=0.3, epochs=5), range(5)) == [0.3] * 5


def test_step_decays_every_step_size_epochs():
    s = make_schedule("step", base_lr=1.0, epochs=10, step_size=3, gamma=0.5)
    assert values(s, [0, 2, 3, 5, 6, 9]) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]


def test_step_default_gamma_is_a_tenth():
    s = make_schedule("step", base_lr=1.0, epochs=10, step_size=2)
    assert s(4) == pytest.approx(0.01)


def test_exponential():
    s = make_schedule("exponential", base_lr=2.0, epochs=10, gamma=0.9)
    assert values(s, [0, 1, 5]) == pytest.approx([2.0, 1.8, 2.0 * 0.9**5])


def test_cosine_values():
    s = make_schedule("cosine", base_lr=1.0, epochs=10, min_lr=0.1)
    assert s(0) == 1.0
    assert s(5) == pytest.approx(0.55)  # half way: (1 + cos(pi/2)) / 2 = 1/2
    assert s(2) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.2)) / 2)
    assert s(9) > 0.1
    assert s(10) == 0.1 and s(50) == 0.1  # past the run: stays at min_lr


def test_cosine_restarts_with_constant_period():
    s = make_schedule("cosine_restarts", base_lr=1.0, epochs=20, t0=4)
    assert values(s, [0, 2, 4, 6, 8]) == pytest.approx([1.0, 0.5, 1.0, 0.5, 1.0])
    assert s(3) == pytest.approx((1 + math.cos(math.pi * 3 / 4)) / 2)


def test_cosine_restarts_with_growing_period():
    # t0 = 2, t_mult = 2: cycles start at epochs 0, 2, 6, 14 with lengths 2, 4, 8, 16
    s = make_schedule("cosine_restarts", base_lr=1.0, epochs=30, t0=2, t_mult=2, min_lr=0.2)
    assert values(s, [0, 2, 6, 14]) == [1.0] * 4
    assert s(1) == pytest.approx(0.6)  # 0.2 + 0.8 * (1 + cos(pi/2)) / 2
    assert s(4) == pytest.approx(0.6)  # 2 into a cycle of 4
    assert s(10) == pytest.approx(0.6)  # 4 into a cycle of 8
    assert s(13) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi * 7 / 8)) / 2)


def test_warmup_ramps_linearly_then_schedule_starts_at_its_epoch_zero():
    s = make_schedule("step", base_lr=1.0, epochs=10, step_size=2, gamma=0.5, warmup_epochs=3)
    assert values(s, range(8)) == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 0.5, 0.5, 0.25])


def test_cosine_with_warmup_anneals_over_the_remaining_epochs():
    s = make_schedule("cosine", base_lr=1.0, epochs=12, warmup_epochs=2)
    assert values(s, [0, 1, 2]) == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert s(7) == pytest.approx(0.5)  # 5 of 10 annealing epochs
    assert s(11) == pytest.approx((1 + math.cos(math.pi * 9 / 10)) / 2)


@pytest.mark.parametrize(
    ("type_", "kwargs", "message"),
    [
        (
            "linear",
            {},
            "schedule type must be one of constant, step, exponential, cosine, cosine_restarts; got 'linear'",
        ),
        ("constant", {"base_lr": -1.0}, "constant schedule: base_lr must be a number > 0, got -1.0"),
        ("constant", {"epochs": 0}, "constant schedule: epochs must be an int >= 1, got 0"),
        ("step", {}, "step schedule: missing required option(s) ['step_size']"),
        ("step", {"step_size": 0}, "step schedule: step_size must be an int >= 1, got 0"),
        ("step", {"step_size": 2, "gamma": 1.5}, "step schedule: gamma must be a number in (0, 1], got 1.5"),
        ("exponential", {"gamma": 0}, "exponential schedule: gamma must be a number in (0, 1], got 0"),
        ("cosine", {"min_lr": 0.5}, "cosine schedule: min_lr must be a number in [0, 0.1], got 0.5"),
        (
            "cosine",
            {"step_size": 3},
            "cosine schedule: unknown option(s) ['step_size']; accepted: warmup_epochs, min_lr",
        ),
        (
            "cosine_restarts",
            {"t0": 2, "t_mult": 1.5},
            "cosine_restarts schedule: t_mult must be an int >= 1, got 1.5",
        ),
        ("constant", {"warmup_epochs": 10}, "constant schedule: warmup_epochs must be < epochs (10), got 10"),
    ],
)
def test_invalid_options_are_rejected(type_, kwargs, message):
    base = {"base_lr": 0.1, "epochs": 10}
    base.update(kwargs)
    with pytest.raises(ValueError) as info:
        make_schedule(type_, **base)
    assert str(info.value) == message


def test_negative_epoch_is_rejected():
    with pytest.raises(ValueError, match="epoch must be >= 0, got -1"):
        make_schedule("constant", base_lr=0.1, epochs=3)(-1)
