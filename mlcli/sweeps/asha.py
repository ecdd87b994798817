"""Asynchronous successive halving (ASHA, Li et al., "A System for Massively Parallel Hyperparameter Tuning",
MLSys 2020) on the epoch budget: which trial to run next, and to how many epochs.

    asha = Asha(max_epochs=27, min_epochs=1, reduction_factor=3, mode="min")   # rungs at 1, 3, 9, 27 epochs
    job = asha.next_job(new_trials_left=True)     # ("promote", trial, epochs) | ("new", None, epochs) | None
    asha.report(trial, epochs, score)             # a trial reached a rung with this score

Rung k is at `min_epochs * reduction_factor**k` epochs (the last rung is `max_epochs`). Whenever a worker is free:
promote a trial from the highest rung that has one in its top `1/reduction_factor` not yet promoted, else start
a new trial at rung 0. So no worker waits for a rung to fill (the "asynchronous" part), and a sweep of n trials
spends about n * min_epochs * (1 + 1 + ...) epochs instead of n * max_epochs. A trial that ends on a rung below the
top is `pruned` at that rung's epochs. NaN scores rank last.
"""

from __future__ import annotations

import math


class Asha:
    def __init__(self, max_epochs: int, min_epochs: int = 1, reduction_factor: int = 3, mode: str = "min") -> None:
        if min_epochs > max_epochs:
            raise ValueError(f"min_epochs ({min_epochs}) must be <= train.epochs ({max_epochs})")
        self.eta = reduction_factor
        self.mode = mode
        self.rungs: list[int] = []
        epochs = min_epochs
        while epochs < max_epochs:
            self.rungs.append(epochs)
            epochs *= reduction_factor
        self.rungs.append(max_epochs)
        self.results: list[dict[str, float]] = [{} for _ in self.rungs]  # rung -> trial -> score
        self.promoted: list[set[str]] = [set() for _ in self.rungs]

    def rung_of(self, epochs: int) -> int:
        return self.rungs.index(epochs)

    def report(self, trial: str, epochs: int, score: float) -> None:
        """`trial` finished rung `epochs` with `score` (a run of exactly that many epochs)."""
        self.results[self.rung_of(epochs)][trial] = score

    def started(self, trial: str, epochs: int) -> None:
        """`trial` was sent on towards `epochs` (a promotion from the rung below): never promote it twice."""
        k = self.rung_of(epochs)
        if k > 0:
            self.promoted[k - 1].add(trial)

    def _key(self, score: float) -> float:
        if score is None or math.isnan(score):
            return math.inf
        return score if self.mode == "min" else -score

    def promotable(self, k: int) -> list[str]:
        """Trials of rung k in its top 1/eta, best first, that have not gone on yet."""
        done = self.results[k]
        top = sorted(done, key=lambda t: (self._key(done[t]), t))[:len(done) // self.eta]
        return [t for t in top if t not in self.promoted[k] and not math.isinf(self._key(done[t]))]

    def next_job(self, new_trials_left: bool):
        """("promote", trial, epochs), ("new", None, rung-0 epochs), or None when nothing can start now."""
        for k in range(len(self.rungs) - 2, -1, -1):
            candidates = self.promotable(k)
            if candidates:
                return "promote", candidates[0], self.rungs[k + 1]
        if new_trials_left:
            return "new", None, self.rungs[0]
        return None

    def final_rung(self, trial: str) -> int | None:
        """The epochs of the highest rung `trial` reached, or None."""
        reached = [self.rungs[k] for k in range(len(self.rungs)) if trial in self.results[k]]
        return reached[-1] if reached else None

    def is_complete(self, trial: str) -> bool:
        return trial in self.results[-1]
