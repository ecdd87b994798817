"""Progress for training: a tqdm bar per epoch on a terminal, one line per epoch otherwise, nothing with --quiet.

Also the stop flag that Ctrl-C and SIGTERM set, so that training stops after the current batch.
"""

from __future__ import annotations

import signal
import sys

from tqdm import tqdm

from mlcli.cli.common import fmt
from mlcli.train.run import Hooks


class StopFlag:
    """Installed as the SIGINT/SIGTERM handler while training; remembers which signal came."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signum = signum
        sys.stderr.write("\nstopping after the current batch (Ctrl-C again to abort)...\n")

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def exit_code(self) -> int:
        return 143 if self.signum == signal.SIGTERM else 130


def epoch_line(record: dict) -> str:
    keys = [k for k in record if k not in ("epoch",)]
    return f"epoch {record['epoch']}: " + "  ".join(f"{k}={fmt(record[k])}" for k in keys)


class Progress:
    """Builds the training hooks for the chosen verbosity."""

    def __init__(self, quiet: bool, epochs: int, stop: StopFlag) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.epochs = epochs
        self.bar = None
        self.stop = stop

    def hooks(self) -> Hooks:
        return Hooks(on_start=self.on_start, on_batch=self.on_batch if self.tty and not self.quiet else None,
                     on_epoch=self.on_epoch, should_stop=self.stop)

    def on_start(self, info: dict) -> None:
        if not self.quiet:
            sys.stderr.write(f"run {info['run_dir']}: {info['model']} on {info['n_train']} train / "
                             f"{info['n_val']} val / {info['n_test']} test samples\n")

    def on_batch(self, event) -> None:
        if self.bar is None:
            self.bar = tqdm(total=event.n_steps, desc=f"epoch {event.epoch}/{self.epochs}", unit="batch",
                            leave=False, file=sys.stderr, dynamic_ncols=True)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{event.loss:.4f}", refresh=False)

    def on_epoch(self, record: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.quiet:
            sys.stderr.write(epoch_line(record) + "\n")
            sys.stderr.flush()
