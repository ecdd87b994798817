"""Options and helpers shared by every command: the error guard (errors -> one line + exit code), config loading
with overrides, output consoles. Imports no command, so that commands and the root app depend on it, not on each
other."""

from __future__ import annotations

import json
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from mlcli.config.load import load_config
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


out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def load(config_path: Path, overrides: list[str] | None, seed: int | None = None):
    return load_config(config_path, overrides or [], seed=seed)


def absolutize_data_path(config, config_path: Path):
    """Store file paths of the data section as absolute paths, so a run's config works from anywhere."""
    from mlcli.data.pipeline import resolve_path

    path = getattr(config.data, "path", None)
    if path is None:
        return config
    resolved = resolve_path(path, Path(config_path).resolve().parent).resolve()
    return config.model_copy(update={"data": config.data.model_copy(update={"path": str(resolved)})})


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n")


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return "" if value is None else str(value)


ConfigArg = typer.Argument(..., help="Path to the YAML config. Example: configs/quickstart.yaml",
                           show_default=False)
