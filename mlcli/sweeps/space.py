"""Search spaces: which overrides each trial of a sweep gets, for grid, random and Optuna (TPE) search.

    space = SearchSpace(parameters={"train.optimizer.lr": Choice([0.1, 0.01]), "model.hidden": Choice([[64], [128]])},
                        zipped=[{"train.optimizer.type": ["sgd", "adam"], "train.optimizer.lr": [0.1, 1e-3]}])
    space.grid()                      # [{"train.optimizer.lr": 0.1, "model.hidden": [64], ...}, ...] in a fixed order
    space.sample(sweep_seed=0, index=3)   # one random draw, the same for the same (seed, index) in any order

A dimension is a `Choice` (values), `Uniform(low, high)`, `LogUniform(low, high)` or `IntRange(low, high, step)`
(`int` has step 1, `qint` any step; both ends included). Grid search takes the product of every choice list,
with each `zip` group (fields that vary together, lists of one length) as one dimension. Random search draws
every dimension independently from a generator seeded by `SeedSequence([sweep_seed, trial_index])`, so that a
trial's overrides never depend on which trials ran before it (a resumed sweep draws the same ones).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Choice:
    values: tuple

    def draw(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1

    def draw(self, rng: np.random.Generator) -> int:
        n = (self.high - self.low) // self.step + 1
        return int(self.low + self.step * int(rng.integers(n)))


Dimension = Choice | Uniform | LogUniform | IntRange


@dataclass
class SearchSpace:
    """`parameters`: dotted field -> Dimension; `zipped`: groups of dotted field -> list of values (one length)."""

    parameters: dict[str, Dimension] = field(default_factory=dict)
    zipped: list[dict[str, list]] = field(default_factory=list)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination, the first field varying slowest; zip groups are one dimension each."""
        axes: list[list[dict[str, Any]]] = []
        for key, dim in self.parameters.items():
            if not isinstance(dim, Choice):
                raise ValueError(f"{key}: grid search takes lists of values, not a {type(dim).__name__} range")
            axes.append([{key: v} for v in dim.values])
        for group in self.zipped:
            n = len(next(iter(group.values())))
            axes.append([{key: values[i] for key, values in group.items()} for i in range(n)])
        return [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*axes)]

    def sample(self, sweep_seed: int, index: int) -> dict[str, Any]:
        """The random draw of trial `index` (zip groups: one position drawn for the whole group)."""
        rng = np.random.default_rng(np.random.SeedSequence([sweep_seed, index]))
        values = {key: dim.draw(rng) for key, dim in self.parameters.items()}
        for group in self.zipped:
            i = int(rng.integers(len(next(iter(group.values())))))
            values.update({key: vals[i] for key, vals in group.items()})
        return values

    def optuna_distributions(self) -> dict[str, Any]:
        """The space as Optuna distributions (zip groups become one categorical over their positions)."""
        import optuna.distributions as od

        dists: dict[str, Any] = {}
        for key, dim in self.parameters.items():
            if isinstance(dim, Choice):
                dists[key] = od.CategoricalDistribution([_encode(v) for v in dim.values])
            elif isinstance(dim, Uniform):
                dists[key] = od.FloatDistribution(dim.low, dim.high)
            elif isinstance(dim, LogUniform):
                dists[key] = od.FloatDistribution(dim.low, dim.high, log=True)
            else:
                dists[key] = od.IntDistribution(dim.low, dim.high, step=dim.step)
        for i, group in enumerate(self.zipped):
            dists[zip_key(i)] = od.CategoricalDistribution(list(range(len(next(iter(group.values()))))))
        return dists

    def from_optuna(self, params: dict[str, Any]) -> dict[str, Any]:
        """Overrides from the parameters Optuna suggested (inverse of `optuna_distributions`)."""
        values = {key: _decode(params[key]) if isinstance(self.parameters[key], Choice) else params[key]
                  for key in self.parameters}
        for i, group in enumerate(self.zipped):
            values.update({key: vals[params[zip_key(i)]] for key, vals in group.items()})
        return values

    def to_optuna(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Optuna parameters of a trial's overrides (to rebuild a study from the ledger)."""
        params = {key: _encode(overrides[key]) if isinstance(self.parameters[key], Choice) else overrides[key]
                  for key in self.parameters}
        for i, group in enumerate(self.zipped):
            first, values = next(iter(group.items()))
            params[zip_key(i)] = next(j for j, v in enumerate(values) if v == overrides[first] and all(
                group[k][j] == overrides[k] for k in group))
        return params


def zip_key(i: int) -> str:
    return f"zip.{i}"


def _encode(value: Any) -> Any:
    """Optuna's categorical choices must be None, bool, int, float or str: lists and dicts go as JSON text."""
    import json

    return value if value is None or isinstance(value, (bool, int, float, str)) else "json:" + json.dumps(value)


def _decode(value: Any) -> Any:
    import json

    return json.loads(value[5:]) if isinstance(value, str) and value.startswith("json:") else value
