"""Progress of a training on stderr: a tqdm bar per epoch on a terminal, one line per epoch otherwise.

    callbacks = [ProgressPrinter(epochs=cfg.train.epochs)]     # what `mlcli train` and `mlcli.train(quiet=False)` use

The bar (batches, loss, throughput) only on a terminal; the per-epoch line always (`epoch 3: train_loss=0.1234 ...`).
"""

from __future__ import annotations

import sys

from mlcli.training.callbacks import Callback


def format_value(value) -> str:
    """A metric for people: 4 decimals, or scientific notation for small numbers."""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return "" if value is None else str(value)


def epoch_line(record: dict) -> str:
    keys = [k for k in record if k != "epoch"]
    return f"epoch {record['epoch']}: " + "  ".join(f"{k}={format_value(record[k])}" for k in keys)


class ProgressPrinter(Callback):
    """Prints the run's start, a bar per epoch (on a terminal) and a line per epoch, to `stream` (stderr)."""

    name = "progress"

    def __init__(self, epochs: int, stream=None) -> None:
        self.epochs = epochs
        self.stream = stream if stream is not None else sys.stderr
        self.bar = None
        if self.stream.isatty():
            self.on_batch_end = self._update_bar  # only a terminal listens to batches

    def on_train_begin(self, run) -> None:
        self.stream.write(f"run {run.run_dir}: {run.config.model.type} on {run.data.train.n} train / "
                          f"{run.data.val.n} val / {run.data.test.n} test samples\n")

    def _update_bar(self, run, event) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=event.n_steps, desc=f"epoch {event.epoch}/{self.epochs}", unit="batch",
                            leave=False, file=self.stream, dynamic_ncols=True)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{event.loss:.4f}", refresh=False)

    def on_epoch_end(self, run, record: dict) -> None:
        self._close_bar()
        self.stream.write(epoch_line(record) + "\n")
        self.stream.flush()

    def on_train_end(self, run) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
