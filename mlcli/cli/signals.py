"""Ctrl-C and SIGTERM while a command trains: the flag they set, so that training stops after the current batch.

    with StopFlag() as stop:
        result = mlcli.train(config, should_stop=stop)
    if stop(): raise typer.Exit(stop.exit_code)       # 130 after Ctrl-C, 143 after SIGTERM
"""

from __future__ import annotations

import signal
import sys


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
        if signum == signal.SIGTERM:
            sys.stderr.write("\nreceived SIGTERM: stopping after the current batch...\n")
        else:
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
