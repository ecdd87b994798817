"""The root `mlcli` command: sub-commands, global options, and the mapping of errors to exit codes.

Every command body runs inside `common.guarded()`: an `MlcliError` becomes one line `error: <message>` on stderr and the
error's exit code (2 config, 3 data, 4 checkpoint, 5 divergence, 6 I/O); anything else is an internal error
(exit 1) whose traceback is shown only with `--debug` (or MLCLI_DEBUG=1).
"""

from __future__ import annotations

import typer

from mlcli.cli.common import STATE

app = typer.Typer(
    name="mlcli",
    help="Train, evaluate and cross-validate classical models and neural networks from YAML configs, "
         "on a pure NumPy core.\n\nExample: mlcli train configs/quickstart.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors. Example: mlcli --debug "
                               "train config.yaml"),
) -> None:
    """mlcli: a small, exact, scriptable trainer."""
    if debug:
        STATE["debug"] = True


def register() -> None:
    """Attach every sub-command (imported here so `mlcli --help` stays fast to import)."""
    from mlcli.cli import config_cmd, cv, data_cmd, eval_cmd, gradcheck, predict, resume, summary, train

    app.command("train", help=train.__doc__, no_args_is_help=True)(train.train)
    app.command("resume", help=resume.__doc__, no_args_is_help=True)(resume.resume)
    app.command("eval", help=eval_cmd.__doc__, no_args_is_help=True)(eval_cmd.evaluate)
    app.command("predict", help=predict.__doc__, no_args_is_help=True)(predict.predict)
    app.command("cv", help=cv.__doc__, no_args_is_help=True)(cv.cross_validate)
    app.command("gradcheck", help=gradcheck.__doc__, no_args_is_help=True)(gradcheck.gradcheck)
    app.command("summary", help=summary.__doc__, no_args_is_help=True)(summary.summary)
    app.add_typer(config_cmd.app, name="config")
    app.add_typer(data_cmd.app, name="data")


register()


def main() -> None:
    app(prog_name="mlcli")
