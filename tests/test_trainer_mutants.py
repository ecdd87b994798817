"""`mlcli.training.trainer.fit` called directly (the epoch generator the driver feeds to callbacks): its defaults,
steps and batches per epoch, the learning rate per epoch, the penalty record, and the divergence message.
Behaviours mutation testing (tools/mutate.py) found no test for."""

from __future__ import annotations

import pytest

from mlcli.errors import DivergenceError
from mlcli.optim.regularizers import penalty
from mlcli.training import trainer
from mlcli.training.trainer import fit, n_steps
from mlcli.workflows.build import make_optimizer, make_schedule, resolve_config, setup


def parts(train=None, data=None):
    cfg, base = resolve_config({"name": "t", "data": data or {"type": "iris"}, "model": {"type": "mlp", "hidden": [4]},
                                "train": {"epochs": 3, "batch_size": 32, "optimizer": {"type": "sgd", "lr": 0.05},
                                          **(train or {})}})
    gens, prepared, model = setup(cfg, base)
    return cfg, gens, prepared, model, make_optimizer(cfg, model), make_schedule(cfg)


def test_n_steps_is_the_number_of_batches_and_at_least_one():
    assert [n_steps(n, 32) for n in (1, 31, 32, 33, 64, 65)] == [1, 1, 1, 2, 2, 3]
    assert n_steps(5, 5) == n_steps(5, 10) == 1


def test_fit_defaults_train_every_epoch_from_the_first_with_batches_covering_the_set_once():
    cfg, gens, data, model, opt, sched = parts()
    n = data.train.n
    events = []
    records = list(fit(model, opt, sched, data, cfg.train, gens, on_batch=events.append))
    assert [r["epoch"] for r in records] == [1, 2, 3]
    steps = n_steps(n, 32)
    for epoch in (1, 2, 3):
        mine = [e for e in events if e.epoch == epoch]
        assert [e.step for e in mine] == list(range(1, steps + 1)) and {e.n_steps for e in mine} == {steps}
        assert sum(e.samples for e in mine) == n and all(e.samples == 32 for e in mine[:-1])
    for r in records:
        assert r["samples_per_sec"] >= n / r["seconds"]  # the rate over the training part of the epoch
        assert 0 < r["seconds"] < 60


def test_an_epoch_too_fast_for_the_clock_has_an_infinite_rate(monkeypatch):
    cfg, gens, data, model, opt, sched = parts({"epochs": 1})
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: 5.0)  # a clock that does not tick
    (record,) = fit(model, opt, sched, data, cfg.train, gens)
    assert record["seconds"] == 0.0 and record["samples_per_sec"] == float("inf")


def test_full_batch_takes_one_step_of_the_whole_set_per_epoch():
    cfg, gens, data, model, opt, sched = parts({"batch_size": "full"})
    events = []
    list(fit(model, opt, sched, data, cfg.train, gens, on_batch=events.append))
    assert [(e.step, e.n_steps, e.samples) for e in events] == [(1, 1, data.train.n)] * 3


def test_the_schedule_is_read_at_epoch_index_0_for_the_first_epoch():
    cfg, gens, data, model, opt, _ = parts()
    records = list(fit(model, opt, lambda e: 0.1 / (e + 1), data, cfg.train, gens))
    assert [r["lr"] for r in records] == pytest.approx([0.1, 0.05, 0.1 / 3])


@pytest.mark.parametrize(("reg", "has_penalty"), [({"l2": 0.01}, True), ({"l1": 0.01}, True),
                                                  ({"l1": 0.5, "l2": 0.5}, True), ({}, False)])
def test_a_penalty_is_recorded_exactly_when_l1_or_l2_is_set(reg, has_penalty):
    cfg, gens, data, model, opt, sched = parts({"regularization": reg})
    records = list(fit(model, opt, sched, data, cfg.train, gens))
    assert all(("penalty" in r) == has_penalty for r in records)
    if has_penalty:
        params = model.net.params()
        assert records[-1]["penalty"] == pytest.approx(penalty(params, l1=reg.get("l1", 0.0), l2=reg.get("l2", 0.0),
                                                               include_bias=False))
        assert records[-1]["penalty"] > 0


def test_divergence_names_the_epoch_and_the_step():
    cfg, gens, data, model, opt, sched = parts({"optimizer": {"type": "sgd", "lr": 1e30}, "batch_size": 8})
    with pytest.raises(DivergenceError, match=r"the training loss became (nan|inf) at epoch 1, step 2 \(last finite"):
        list(fit(model, opt, sched, data, cfg.train, gens))
