"""CallbackList: which hooks it calls, the per-batch hook only when someone listens, names and saved state."""

from __future__ import annotations

import pytest

from mlcli.config.train_schema import EarlyStopping as EarlyStoppingConfig
from mlcli.training.callbacks import Callback, CallbackList, EarlyStopping, callback_name


class Counter(Callback):
    def __init__(self) -> None:
        self.batches = []
        self.n = 0

    def on_batch_end(self, run, event) -> None:
        self.batches.append(event)

    def state_dict(self) -> dict:
        return {"n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.n = state["n"]


class EpochsOnly:
    """Duck-typed: one hook, no state methods."""

    def __init__(self) -> None:
        self.epochs = []

    def on_epoch_end(self, run, record) -> None:
        self.epochs.append(record["epoch"])


def test_names_default_to_the_class_name():
    assert callback_name(Counter()) == "Counter"
    assert callback_name(EpochsOnly()) == "EpochsOnly"
    assert callback_name(EarlyStopping(EarlyStoppingConfig())) == "early_stopping"


def test_two_callbacks_with_one_name_are_refused():
    with pytest.raises(ValueError, match="callbacks need distinct names .*repeated: Counter"):
        CallbackList([Counter(), EpochsOnly(), Counter()])


def test_batch_hook_only_when_a_callback_listens():
    """No per-batch cost without listeners: callbacks that inherit the base's no-op or lack the hook don't count."""
    assert CallbackList([EpochsOnly(), Callback(), EarlyStopping(EarlyStoppingConfig())]).batch_hook("run") is None
    counter = Counter()
    hook = CallbackList([EpochsOnly(), counter]).batch_hook("run")
    hook("event-1")
    hook("event-2")
    assert counter.batches == ["event-1", "event-2"]


def test_epoch_hooks_reach_duck_typed_callbacks():
    duck = EpochsOnly()
    callbacks = CallbackList([Counter(), duck])
    callbacks.on_train_begin("run")
    callbacks.on_epoch_end("run", {"epoch": 1})
    callbacks.on_epoch_end("run", {"epoch": 2})
    callbacks.on_train_end("run")
    assert duck.epochs == [1, 2]


def test_state_is_saved_and_restored_by_name_and_empty_states_are_skipped():
    counter = Counter()
    counter.n = 3
    callbacks = CallbackList([counter, EpochsOnly(), Callback()])
    assert callbacks.state_dict() == {"Counter": {"n": 3}}
    fresh = Counter()
    CallbackList([fresh, EpochsOnly()]).load_state_dict({"Counter": {"n": 3}, "EpochsOnly": {}})
    assert fresh.n == 3
    CallbackList([EpochsOnly()]).load_state_dict({"EpochsOnly": {"x": 1}})  # no load_state_dict: left alone


def test_early_stopping_state_without_a_wait_starts_counting_at_zero():
    es = EarlyStopping(EarlyStoppingConfig(patience=1))
    es.load_state_dict({"best": 1.0, "best_epoch": 2})
    assert es.wait == 0
    assert es.update({"epoch": 3, "val_loss": 0.5}) is False
    assert es.update({"epoch": 4, "val_loss": 0.6}) is True
