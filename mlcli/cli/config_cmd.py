"""Inspect configs: show the resolved config, validate one, print the JSON schema for editors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from mlcli.cli.common import SET_HELP, ConfigArg, guarded, load, out

app = typer.Typer(help="Show, validate or describe configs. Example: mlcli config show configs/mlp.yaml",
                  no_args_is_help=True, rich_markup_mode=None)


@app.command("show", no_args_is_help=True)
def show(config: Path = ConfigArg, set_: list[str] = typer.Option([], "--set", help=SET_HELP)) -> None:
    """Print the resolved config (defaults filled in, overrides applied). Example: mlcli config show c.yaml"""
    with guarded():
        cfg = load(config, set_)
        from mlcli.config.dump import dump_config

        sys.stdout.write(dump_config(cfg.resolved()))


@app.command("validate", no_args_is_help=True)
def validate(config: Path = ConfigArg, set_: list[str] = typer.Option([], "--set", help=SET_HELP)) -> None:
    """Check a config without running it: the schema, then the network's layer shapes on the data's sample
    shape; exit 0 when valid, 2 with the first problem otherwise. Example: mlcli config validate configs/mlp.yaml"""
    with guarded():
        cfg = load(config, set_)
        if not cfg.is_fitted_in_closed_form():
            from mlcli.workflows.summary import summarize_config

            summarize_config(cfg, base_dir=config.resolve().parent)
        out.print(f"{config}: valid ({cfg.model.type} on {cfg.data.type}, seed {cfg.seed})")


@app.command("schema")
def schema() -> None:
    """Print the JSON schema of configs (for editor completion). Example: mlcli config schema > mlcli.json"""
    with guarded():
        from mlcli.config.schema import Config

        sys.stdout.write(json.dumps(Config.model_json_schema(), indent=2) + "\n")
