"""Schedule options at the edges of their ranges: closed upper bounds, the smallest restart period, booleans."""

from __future__ import annotations

import pytest

from mlcli.optim.schedules import make_schedule


def test_step_gamma_of_one_is_a_constant_rate():
    schedule = make_schedule("step", base_lr=0.1, epochs=10, step_size=2, gamma=1.0)
    assert [schedule(e) for e in range(5)] == [0.1] * 5


def test_cosine_min_lr_may_equal_the_base_rate():
    schedule = make_schedule("cosine", base_lr=0.1, epochs=4, min_lr=0.1)
    assert [schedule(e) for e in range(6)] == pytest.approx([0.1] * 6)


def test_cosine_restarts_with_a_period_of_one_restarts_every_epoch():
    schedule = make_schedule("cosine_restarts", base_lr=0.1, epochs=10, t0=1)
    assert [schedule(e) for e in range(4)] == [0.1] * 4
    with pytest.raises(ValueError, match="t0 must be an int >= 1, got 0"):
        make_schedule("cosine_restarts", base_lr=0.1, epochs=10, t0=0)


@pytest.mark.parametrize("value", [True, False, "0.5", None])
def test_a_boolean_or_string_is_not_a_number(value):
    with pytest.raises(ValueError, match="gamma must be a number in \\(0, 1\\]"):
        make_schedule("step", base_lr=0.1, epochs=10, step_size=2, gamma=value)


@pytest.mark.parametrize("schedule_type", ["constant", "cosine"])
def test_warmup_ends_on_exactly_the_base_rate(schedule_type):
    """Warmup epochs 0..w-1 ramp up as base * (e + 1) / (w + 1); epoch w is the schedule's own first epoch, at
    exactly base_lr (the ramp's formula at e = w would round: 0.1 * 3 / 3 != 0.1)."""
    schedule = make_schedule(schedule_type, base_lr=0.1, epochs=10, warmup_epochs=2)
    assert [schedule(e) for e in range(2)] == pytest.approx([0.1 / 3, 0.2 / 3])
    assert schedule(2) == 0.1
