"""Options and helpers shared by several commands (config loading with overrides, output consoles)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from mlcli.config.load import load_config

SET_HELP = ("Override a config field, dotted path = YAML value; repeatable. "
            "Example: --set train.optimizer.lr=0.01 --set model.hidden=[64,32]")

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
