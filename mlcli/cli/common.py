"""Options and helpers shared by every command: the error guard (errors -> one line + exit code), config loading
with overrides, output consoles. Imports no command, so that commands and the root app depend on it, not on each
other.

Imports only the standard library, typer and `mlcli.errors` at load time, because every command module imports it
and `mlcli --help` should start fast: rich's consoles are created on first use, the config loader when `load` runs.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

import typer

from mlcli.errors import EXIT_INTERNAL, MlcliError

SET_HELP = ("Override a config field, dotted path = YAML value; repeatable. "
            "Example: --set train.optimizer.lr=0.01 --set model.hidden=[64,32]")

STATE = {"debug": os.environ.get("MLCLI_DEBUG", "") not in ("", "0")}


def print_error(message: str) -> None:
    """One unwrapped line on stderr."""
    sys.stderr.write("error: " + " ".join(str(message).split()) + "\n")
    sys.stderr.flush()


@contextmanager
def guarded():
    """Turn failures into one clear line and an exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except MlcliError as err:
        if STATE["debug"]:
            traceback.print_exc()
        print_error(str(err))
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(130) from None
    except Exception as err:  # an mlcli bug: say so, and how to see more
        if STATE["debug"]:
            traceback.print_exc()
        print_error(f"internal error: {type(err).__name__}: {err} (this is a bug in mlcli; rerun with --debug "
                    f"for the traceback)")
        raise typer.Exit(EXIT_INTERNAL) from None


class LazyConsole:
    """A rich `Console` created on first attribute access (importing rich costs about 30 ms of every start)."""

    def __init__(self, **options) -> None:
        self._options = options
        self._console = None

    def __getattr__(self, name: str):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out = LazyConsole(soft_wrap=True)
err = LazyConsole(stderr=True, soft_wrap=True)


def load(config_path: Path, overrides: list[str] | None, seed: int | None = None):
    """The validated config of `config_path` with `--set` overrides (and `--seed`) applied."""
    from mlcli.config.load import load_config

    return load_config(config_path, overrides or [], seed=seed)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n")


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return "" if value is None else str(value)


ConfigArg = typer.Argument(..., help="Path to the YAML config. Example: configs/quickstart.yaml",
                           show_default=False)
