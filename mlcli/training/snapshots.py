"""Snapshot ensembles (Huang et al., 2017): one run under cosine warm restarts, the weights at each dip kept.

    collector = SnapshotCollector(restart_cycle_ends(epochs, warmup, t0, t_mult))
    run_loop(run, [..., collector]); collector.states   # {epoch: model state at the end of that cycle}

The learning rate of `cosine_restarts` falls to `min_lr` at the end of every cycle (epochs t0, t0 + t0*t_mult,
...), where the weights sit in a local minimum; the next epoch restarts at the base rate and leaves it. Each such
end is one member of the ensemble (`model.ensemble.snapshot`, built by `mlcli.workflows.ensemble_train`).
"""

from __future__ import annotations

from mlcli.training.callbacks import Callback


class SnapshotCollector(Callback):
    """Keeps a copy of the model's state at the end of each epoch in `cycle_ends` (1-based epoch numbers)."""

    name = "snapshots"

    def __init__(self, cycle_ends: list[int]) -> None:
        self.cycle_ends = sorted(int(e) for e in cycle_ends)
        self.states: dict[int, dict] = {}

    def on_epoch_end(self, run, record: dict) -> None:
        epoch = int(record["epoch"])
        if epoch in self.cycle_ends:
            self.states[epoch] = run.model.state()

    def last(self, k: int | None) -> list[tuple[int, dict]]:
        """The last `k` snapshots (all for None), oldest first, as (epoch, state)."""
        epochs = sorted(self.states)
        return [(e, self.states[e]) for e in (epochs if k is None else epochs[-k:])]
