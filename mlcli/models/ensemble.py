"""An ensemble of trained models behind the one model interface: K members, averaged or voted.

    model = EnsembleModel([m1, m2, m3], vote="soft")
    model.probabilities(x)      # (N, C): the mean of the members' class probabilities (soft), or vote fractions
    model.predict(x)            # labels by the vote, or the mean of the members' outputs (regression, autoencoder)
    model.evaluate(x, y)        # the ensemble's metrics; model.member_metrics(x, y): each member's
    model.state()               # {"member.0.0.linear.W": ..., "member.1.0.linear.W": ...}

Votes (classifiers): `soft` predicts the argmax of the mean probability; `hard` the class most members predict,
ties going to the tied class with the highest mean probability, then to the smallest label. The ensemble's `loss`
is the mean negative log of the mean probability of the true class, whatever the vote (a vote fraction of 0 would
make it infinite); regression and reconstruction losses are the MSE of the mean output.

A member may see its inputs through an affine adapter, `x_i = x * scale + shift` (arrays `member.<i>.input.scale`
and `.shift`, the standardization's shape): an ensemble of cv folds is standardized with the first fold's
statistics, and each other fold's model gets its own back (`mlcli.workflows.ensemble_build`).
"""

from __future__ import annotations

import re

import numpy as np

_MEMBER = re.compile(r"member\.(\d+)\.(.+)")


def ensemble_size(config) -> int:
    """How many members `config.model.ensemble` describes (a snapshot ensemble without `members`: every cycle)."""
    ens = config.model.ensemble
    if ens.members is not None:
        return int(ens.members)
    from mlcli.config.schema import restart_cycle_ends

    sched = config.train.schedule
    return len(restart_cycle_ends(config.train.epochs, sched.warmup_epochs, sched.t0, sched.t_mult))


def member_count(names) -> int:
    """The number of distinct member indices among array names `member.<i>.<...>` (prefix `model.` removed)."""
    found = {int(m.group(1)) for name in names if (m := _MEMBER.fullmatch(name))}
    return len(found)


def hard_vote(labels: np.ndarray, mean_proba: np.ndarray) -> np.ndarray:
    """The majority label per row of `labels` (K, N) over C classes, ties to the highest `mean_proba` (N, C),
    then to the smallest label."""
    counts = np.zeros_like(mean_proba)
    for row in labels:
        counts[np.arange(len(row)), row] += 1
    # counts differ by whole votes; half a probability (< 1) only orders the tied classes
    return np.argmax(counts + 0.5 * mean_proba, axis=1).astype(np.int64)


class EnsembleModel:
    """Trained members (NetworkModel or ClassicalModel, one task) combined by `vote` (soft or hard)."""

    is_network = False  # trained member by member (mlcli.workflows.ensemble_train), never by the trainer itself

    def __init__(self, members: list, *, vote: str = "soft", has_loss: bool = True) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        tasks = {m.task for m in members}
        if len(tasks) != 1:
            raise ValueError(f"ensemble members must share one task; got {sorted(tasks)}")
        self.members = list(members)
        self.vote = vote
        self.task = members[0].task
        self.has_loss = has_loss
        self.adapters: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.adapter_per_channel = False

    # ---------------------------------------------------------------------------------------- adapters
    def set_adapter(self, i: int, scale: np.ndarray, shift: np.ndarray, per_channel: bool) -> None:
        """Member `i` sees `x * scale + shift` (per feature, or per channel of NCHW images)."""
        self.adapters[i] = (np.asarray(scale, dtype=np.float64), np.asarray(shift, dtype=np.float64))
        self.adapter_per_channel = per_channel

    def _inputs(self, i: int, x: np.ndarray) -> np.ndarray:
        if i not in self.adapters:
            return x
        scale, shift = self.adapters[i]
        if self.adapter_per_channel:
            scale = scale.reshape(1, -1, *([1] * (x.ndim - 2)))
            shift = shift.reshape(1, -1, *([1] * (x.ndim - 2)))
        return (x * scale + shift).astype(x.dtype)

    # ---------------------------------------------------------------------------------------- inference
    def member_probabilities(self, x: np.ndarray) -> list[np.ndarray]:
        """Each member's class probabilities (N, C), float64."""
        return [m.probabilities(self._inputs(i, x)) for i, m in enumerate(self.members)]

    def member_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Each member's predictions as float64: values (N,) / (N, k), or reconstructions (N, D)."""
        return [np.asarray(m.predict(self._inputs(i, x)), dtype=np.float64) for i, m in enumerate(self.members)]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C): the members' mean (soft), or the fractions of members voting each class
        (hard)."""
        probs = self.member_probabilities(x)
        if self.vote == "soft":
            return np.mean(probs, axis=0)
        labels = np.stack([p.argmax(axis=1) for p in probs])  # (K, N)
        fractions = np.zeros_like(probs[0])
        for row in labels:
            fractions[np.arange(len(row)), row] += 1.0 / len(labels)
        return fractions

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.task != "classification":
            return np.mean(self.member_outputs(x), axis=0)
        probs = self.member_probabilities(x)
        mean = np.mean(probs, axis=0)
        if self.vote == "soft":
            return mean.argmax(axis=1)
        return hard_vote(np.stack([p.argmax(axis=1) for p in probs]), mean)

    def evaluate(self, x: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
        """The ensemble's metrics on a split (see the module docstring for its loss)."""
        from mlcli.models.metrics import mean_nll_of_probabilities, mse, task_metrics

        if self.task == "classification":
            probs = self.member_probabilities(x)
            mean = np.mean(probs, axis=0)
            pred = mean.argmax(axis=1) if self.vote == "soft" else hard_vote(
                np.stack([p.argmax(axis=1) for p in probs]), mean)
            metrics = {"loss": mean_nll_of_probabilities(mean, y)} if self.has_loss else {}
            metrics.update(task_metrics(self.task, pred, y))
            return metrics
        out = np.mean(self.member_outputs(x), axis=0)
        target = x.reshape(len(x), -1) if self.task == "reconstruction" else y
        metrics = {"loss": mse(out.reshape(len(x), -1), np.asarray(target, dtype=np.float64).reshape(len(x), -1))}
        metrics.update(task_metrics(self.task, out, target))
        return metrics

    def member_metrics(self, x: np.ndarray, y: np.ndarray | None) -> list[dict[str, float]]:
        """Each member's own metrics on the split, in member order."""
        return [m.evaluate(self._inputs(i, x), y) for i, m in enumerate(self.members)]

    # ---------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, np.ndarray]:
        """Every member's arrays as `member.<i>.<name>`, adapters as `member.<i>.input.scale` / `.shift`."""
        state = {f"member.{i}.{k}": v for i, m in enumerate(self.members) for k, v in m.state().items()}
        for i, (scale, shift) in sorted(self.adapters.items()):
            state[f"member.{i}.input.scale"] = scale.copy()
            state[f"member.{i}.input.shift"] = shift.copy()
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        per_member: list[dict] = [{} for _ in self.members]
        for name, arr in state.items():
            m = _MEMBER.fullmatch(name)
            if m is None or int(m.group(1)) >= len(self.members):
                raise ValueError(f"{name!r} is not an array of one of the {len(self.members)} members")
            per_member[int(m.group(1))][m.group(2)] = arr
        for i, (member, part) in enumerate(zip(self.members, per_member, strict=True)):
            if i in self.adapters:
                self.adapters[i] = (part.pop("input.scale"), part.pop("input.shift"))
            member.load_state(part)

    def state_specs(self, n_features: int, n_classes: int) -> dict[str, tuple]:
        """Dtype and shape of every saved array, member by member (see `ClassicalModel.state_specs`)."""
        specs = {}
        for i, m in enumerate(self.members):
            own = m.state_specs() if m.is_network else m.state_specs(n_features, n_classes)
            specs.update({f"member.{i}.{k}": v for k, v in own.items()})
        for i, (scale, _shift) in sorted(self.adapters.items()):
            specs[f"member.{i}.input.scale"] = ("float64", tuple(scale.shape))
            specs[f"member.{i}.input.shift"] = ("float64", tuple(scale.shape))
        return specs
