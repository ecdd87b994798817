"""Per-layer training diagnostics: what the activations, gradients and updates of a network do, epoch by epoch.

    Diagnostics(run_dir)        # a callback; `train.diagnostics: true` or `mlcli train --diagnostics` adds it

One JSON line per epoch in `RUN/diagnostics.jsonl` (and one for the weights training starts from, epoch 0 or the
resumed epoch), strict JSON (NaN -> null):

    {"epoch": 3, "probe": 256,
     "activations": {"1.linear": {"mean": ..., "std": ...}, "2.tanh": {"mean": ..., "std": ..., "saturated": ...},
                     "4.relu": {"mean": ..., "std": ..., "dead": ..., "dead_units": ...}, ...},
     "params": {"1.linear.W": {"norm": ..., "grad_norm": ..., "update_ratio": ...}, ...}}

- activations: the output of every layer (flatten and dropout left out) on one fixed probe batch, the first
  `probe` training samples, run in eval mode at the end of the epoch: mean, std; `saturated` (sigmoid, tanh) is the
  fraction of outputs within 0.01 of the bounds (sigmoid < 0.01 or > 0.99, |tanh| > 0.99); `dead` (relu) the
  fraction of outputs at 0 and `dead_units` the fraction of units (features, or channels of a feature map) at 0 for
  every probe sample.
- params: `norm` ||w|| at the end of the epoch; `grad_norm` ||g|| and `update_ratio` ||w_after - w_before|| /
  ||w_before|| (cs231n's rule of thumb: about 1e-3) of the epoch's first optimizer step, the real step with its
  penalty, clipping and optimizer rule (null for an array that was all zeros before it).

Cheap by construction: per epoch one eval-mode forward of the probe batch and one copy of the weights, per batch a
single comparison. It changes nothing in training: eval mode draws no dropout mask and updates no batchnorm
statistic, and no generator is touched, so a run's metrics and checkpoints are the same with it on or off.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mlcli.errors import RunIOError
from mlcli.runs.rundir import clean
from mlcli.training.callbacks import Callback

PROBE_SIZE = 256
PROBE_CHUNK = 32
SATURATION = 0.01
SKIPPED_KINDS = ("flatten", "dropout")


def _norm(a: np.ndarray) -> float:
    flat = a.reshape(-1).astype(np.float64, copy=False)
    return math.sqrt(float(np.dot(flat, flat)))


def activation_stats(kind: str, y: np.ndarray) -> dict:
    """Mean, std and (by `kind`) the saturated or dead fraction of a layer's output `y` (N, ...)."""
    stats = {"mean": float(y.mean(dtype=np.float64)), "std": float(y.std(dtype=np.float64))}
    if kind == "sigmoid":
        stats["saturated"] = float(np.count_nonzero((y < SATURATION) | (y > 1 - SATURATION)) / y.size)
    elif kind == "tanh":
        stats["saturated"] = float(np.count_nonzero(np.abs(y) > 1 - SATURATION) / y.size)
    elif kind == "relu":
        zero = y == 0
        stats["dead"] = float(np.count_nonzero(zero) / y.size)
        axes = (0, *range(2, y.ndim))  # units: features of (N, D), channels of (N, C, H, W)
        stats["dead_units"] = float(np.mean(np.all(zero, axis=axes)))
    return stats


def probe_activations(net, x: np.ndarray, chunk: int = PROBE_CHUNK) -> dict[str, dict]:
    """`activation_stats` of every layer's output (but flatten and dropout) on `x`, eval mode, by `<i>.<kind>`.

    The batch goes through in slices of `chunk` samples, as small as training batches: a GEMM of 256 rows wakes
    OpenBLAS's threads, which on a busy 2-core machine costs more than the arithmetic (13 ms instead of 1 ms per
    epoch on the quickstart). Eval mode treats samples independently, so the outputs are the same."""
    parts = [x[i:i + chunk] for i in range(0, len(x), chunk)]
    out = {}
    for i, layer in enumerate(net.layers):
        parts = [layer.forward(part, False) for part in parts]
        if layer.kind not in SKIPPED_KINDS:
            out[f"{i}.{layer.kind}"] = activation_stats(layer.kind, np.concatenate(parts))
    return out


class Diagnostics(Callback):
    """Writes `diagnostics.jsonl` in `run_dir` (see the module docstring); does nothing for a model fitted in
    closed form. `probe`: how many training samples the fixed probe batch holds."""

    name = "diagnostics"

    def __init__(self, run_dir: Path, probe: int = PROBE_SIZE) -> None:
        self.path = Path(run_dir) / "diagnostics.jsonl"
        self.probe = probe
        self.active = False
        self._x: np.ndarray | None = None
        self._before: dict[str, np.ndarray] | None = None
        self._step: dict[str, dict] = {}

    def on_train_begin(self, run) -> None:
        self.active = bool(getattr(run.model, "is_network", False))
        if not self.active:
            return
        self._x = run.data.train.x[:self.probe]
        self._write(run, run.start_epoch)
        self._snapshot(run)

    def on_batch_end(self, run, event) -> None:
        if self._before is None:
            return
        net = run.model.net
        grads = net.grads()
        step = {}
        for name, w in net.params().items():
            before = _norm(self._before[name])
            step[name] = {"grad_norm": _norm(grads[name]),
                          "update_ratio": _norm(w - self._before[name]) / before if before > 0 else None}
        self._step = step
        self._before = None

    def on_epoch_end(self, run, record: dict) -> None:
        if not self.active:
            return
        self._write(run, int(record["epoch"]))
        self._snapshot(run)

    def _snapshot(self, run) -> None:
        self._before = {name: w.copy() for name, w in run.model.net.params().items()}
        self._step = {}

    def _write(self, run, epoch: int) -> None:
        net = run.model.net
        with np.errstate(all="ignore"):
            activations = probe_activations(net, self._x)
            params = {name: {"norm": _norm(w), **self._step.get(name, {})} for name, w in net.params().items()}
        line = {"epoch": epoch, "probe": len(self._x), "activations": activations, "params": params}
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(clean(line), allow_nan=False) + "\n")
                f.flush()
        except OSError as err:
            raise RunIOError(f"{self.path}: cannot write diagnostics: {err.strerror or err}") from None


def read_diagnostics(run_dir: Path) -> list[dict]:
    """The records of a run's diagnostics.jsonl ([] when it has none); lines cut by a kill are skipped."""
    path = Path(run_dir) / "diagnostics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
