"""EarlyStopping and BestTracker: when training stops and which epoch counts as the best (Keras' semantics: an
improvement must beat the best by more than min_delta; patience epochs without one stop; epochs up to start_epoch
are not watched)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlcli.config.train_schema import EarlyStopping as EarlyStoppingConfig
from mlcli.training.callbacks import BestTracker, EarlyStopping

NAN = float("nan")


def run_until_stop(values, monitor: str = "val_loss", **cfg) -> tuple[int | None, EarlyStopping]:
    """Feed `values` as epochs 1, 2, ...; the epoch at which EarlyStopping stops training (None: never)."""
    es = EarlyStopping(EarlyStoppingConfig(monitor=monitor, **cfg))
    run = SimpleNamespace(stop_training=False, summary={})
    for epoch, value in enumerate(values, start=1):
        es.on_epoch_end(run, {"epoch": epoch, monitor: value})
        if run.stop_training:
            assert run.summary["stopped_epoch"] == epoch == es.stopped_epoch
            return epoch, es
    assert es.stopped_epoch is None and "stopped_epoch" not in run.summary
    return None, es


def test_patience_one_stops_at_the_first_epoch_without_improvement():
    assert run_until_stop([1.0, 0.9, 0.95, 0.5], patience=1)[0] == 3


def test_patience_counts_consecutive_epochs_and_an_improvement_resets_it():
    values = [1.0, 1.1, 1.2, 0.9, 1.0, 1.0, 1.0, 1.0]
    epoch, es = run_until_stop(values, patience=3)
    assert epoch == 7
    assert (es.tracker.best, es.tracker.best_epoch) == (0.9, 4)
    assert run_until_stop(values, patience=4)[0] == 8
    assert run_until_stop(values[:7], patience=4)[0] is None


def test_a_tie_with_the_best_is_not_an_improvement():
    epoch, es = run_until_stop([1.0, 1.0, 1.0], patience=2)
    assert epoch == 3
    assert es.tracker.best_epoch == 1


def test_min_delta_in_min_mode():
    """val_loss must fall below best - min_delta; the best only moves on such an improvement."""
    epoch, es = run_until_stop([1.0, 0.95, 0.85, 0.80, 0.78, 0.77], patience=3, min_delta=0.1)
    assert epoch == 6
    assert (es.tracker.best, es.tracker.best_epoch) == (0.85, 3)
    # exactly min_delta better is not enough (binary-exact values), a little more is
    assert run_until_stop([1.0, 0.75], patience=1, min_delta=0.25)[0] == 2
    assert run_until_stop([1.0, 0.7], patience=1, min_delta=0.25)[0] is None


def test_min_delta_in_max_mode():
    """accuracy is watched upwards (mode auto): it must rise above best + min_delta."""
    epoch, es = run_until_stop([0.5, 0.55, 0.65, 0.7, 0.72], monitor="val_accuracy", patience=2, min_delta=0.1)
    assert epoch == 5
    assert (es.tracker.best, es.tracker.best_epoch) == (0.65, 3)
    assert run_until_stop([0.5, 0.75], monitor="val_accuracy", patience=1, min_delta=0.25)[0] == 2
    assert run_until_stop([0.5, 0.8], monitor="val_accuracy", patience=1, min_delta=0.25)[0] is None
    assert run_until_stop([0.5, 0.4], monitor="val_accuracy", patience=1)[0] == 2


def test_explicit_mode_overrides_the_metric_name():
    assert run_until_stop([1.0, 2.0, 3.0], monitor="val_loss", mode="max", patience=1)[0] is None
    assert run_until_stop([1.0, 2.0], monitor="val_loss", mode="max", patience=1)[0] is None
    assert run_until_stop([0.5, 0.6], monitor="val_accuracy", mode="min", patience=1)[0] == 2


def test_epochs_up_to_start_epoch_are_not_watched():
    """With start_epoch = 3 the first three epochs neither count against patience nor set the best."""
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert run_until_stop(values, patience=1)[0] == 2
    epoch, es = run_until_stop(values, patience=1, start_epoch=3)
    assert epoch == 5
    assert (es.tracker.best, es.tracker.best_epoch) == (4.0, 4)
    # the low values of the unwatched epochs are not a best to beat
    assert run_until_stop([5.0, 4.0, 3.0, 9.0, 9.0], patience=1)[0] == 4
    assert run_until_stop([5.0, 4.0, 3.0, 9.0, 8.0], patience=1, start_epoch=3)[0] is None
    assert run_until_stop([5.0, 4.0, 3.0, 9.0, 9.0], patience=1, start_epoch=3)[0] == 5


def test_a_nan_value_is_never_the_best_and_counts_as_no_improvement():
    epoch, es = run_until_stop([1.0, NAN, NAN], patience=2)
    assert epoch == 3
    assert (es.tracker.best, es.tracker.best_epoch) == (1.0, 1)
    epoch, es = run_until_stop([NAN, 1.0, 0.5, NAN], patience=2)
    assert epoch is None
    assert (es.tracker.best, es.tracker.best_epoch) == (0.5, 3)
    assert run_until_stop([0.5, NAN, float("-inf")], monitor="val_accuracy", patience=2)[0] == 3


def test_state_dict_resumes_the_count():
    """Resumed after epoch 2 of [1.0, 1.1, 1.2] with patience 2: the wait (1) and best carry over."""
    _, es = run_until_stop([1.0, 1.1], patience=2)
    state = es.state_dict()
    assert state == {"wait": 1, "best": 1.0, "best_epoch": 1}
    resumed = EarlyStopping(EarlyStoppingConfig(patience=2))
    resumed.load_state_dict(state)
    assert resumed.update({"epoch": 3, "val_loss": 1.05}) is True
    fresh = EarlyStopping(EarlyStoppingConfig(patience=2))
    assert fresh.update({"epoch": 3, "val_loss": 1.05}) is False


def test_best_tracker_reports_each_new_best():
    tracker = BestTracker("val_loss")
    flags = [tracker.update({"epoch": e, "val_loss": v}) for e, v in enumerate([3.0, 2.0, 2.0, NAN, 2.5, 1.0], 1)]
    assert flags == [True, True, False, False, False, True]
    assert (tracker.best, tracker.best_epoch) == (1.0, 6)
    assert tracker.mode == "min" and BestTracker("val_accuracy").mode == "max"
    assert BestTracker("val_loss", mode="max").mode == "max"
    restored = BestTracker("val_loss")
    restored.load_state_dict(tracker.state_dict())
    assert (restored.best, restored.best_epoch) == (1.0, 6)
    restored.load_state_dict({"best": None, "best_epoch": None})
    assert restored.best is None and restored.update({"epoch": 7, "val_loss": 9.0})


def test_missing_monitored_value_is_not_an_improvement():
    tracker = BestTracker("val_loss")
    assert tracker.update({"epoch": 1, "train_loss": 1.0}) is False
    assert tracker.best is None


@pytest.mark.parametrize("patience", [1, 2, 5])
def test_a_steadily_improving_run_never_stops(patience):
    assert run_until_stop([1.0 / e for e in range(1, 30)], patience=patience)[0] is None
