"""The root `mlcli` command: sub-commands, global options, and the mapping of errors to exit codes.

Every command body runs inside `common.guarded()`: an `MlcliError` becomes one line `error: <message>` on stderr and the
error's exit code (2 config, 3 data, 4 checkpoint, 5 divergence, 6 I/O); anything else is an internal error
(exit 1) whose traceback is shown only with `--debug` (or MLCLI_DEBUG=1). Usage errors found by click while parsing
the command line (an unknown option or command, a bad choice, a missing argument) are turned into the same one line
by the root group, `RootGroup.main`, which is what both the console script and typer's CliRunner call.
"""

from __future__ import annotations

import re
import sys

import typer
from typer.core import TyperGroup

from mlcli.cli.common import STATE, print_error

try:  # typer >= 0.2x vendors click as typer._click; older typer releases depend on click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions


def usage_message(error: click_exceptions.UsageError) -> str:
    """Click's message as one line: `<sub-command>: <what is wrong>; <what was expected or a next step>`.

    "Invalid value for '--split': Value error, 'tst' is not one of 'test', 'val', 'train'." from `mlcli eval`
    becomes "eval: invalid value for '--split': 'tst' is not one of 'test', 'val', 'train'".
    """
    message = " ".join(error.format_message().replace("Value error, ", "").split())
    message = re.sub(r"\s*\(Possible options: (.+)\)$", r"; did you mean \1?", message)
    message = re.sub(r"\.?\s+Did you mean", "; did you mean", message).rstrip(".")
    message = message[:1].lower() + message[1:]
    path = error.ctx.command_path.split()[1:] if error.ctx is not None else []
    command = " ".join(path)
    stated = isinstance(error, click_exceptions.BadParameter) and not isinstance(error,
                                                                                 click_exceptions.MissingParameter)
    if not stated and "did you mean" not in message:
        message += f"; see 'mlcli {command + ' ' if command else ''}-h'"
    return f"{command}: {message}" if command else message


class RootGroup(TyperGroup):
    """typer's group, but click's usage errors reach the user as one `error:` line with exit 2, like every error."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except click_exceptions.UsageError as error:
            # the option parser raises some errors ("option '--split' requires an argument") without the context of
            # the sub-command it was parsing; name that sub-command in the message all the same
            if error.ctx is None and ctx.invoked_subcommand is not None:
                command = self.get_command(ctx, ctx.invoked_subcommand)
                error.ctx = typer.Context(command, info_name=ctx.invoked_subcommand, parent=ctx)
            raise

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            # typer returns a command's return value, or the code of an Exit raised by a command or --help
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError as help_text:  # `mlcli train` alone: its help, not an error
            help_text.show()
            sys.exit(help_text.exit_code)
        except click_exceptions.UsageError as error:
            print_error(usage_message(error))
            sys.exit(error.exit_code)
        except click_exceptions.ClickException as error:
            print_error(error.format_message())
            sys.exit(error.exit_code)
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="mlcli",
    cls=RootGroup,
    help="Train, evaluate and cross-validate classical models and neural networks from YAML configs, "
         "on a pure NumPy core.\n\nExample: mlcli init quickstart && mlcli train quickstart.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def show_version(value: bool) -> None:
    if value:
        from mlcli import __version__

        typer.echo(f"mlcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors. Example: mlcli --debug "
                               "train config.yaml"),
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                 help="Print the version and exit. Example: mlcli --version"),
) -> None:
    """mlcli: a small, exact, scriptable trainer."""
    if debug:
        STATE["debug"] = True


def register() -> None:
    """Attach every sub-command; a command module imports only typer and the standard library at load time, so
    that `mlcli --help` starts fast."""
    from mlcli.cli import (
        config_cmd,
        cv,
        data_cmd,
        doctor,
        ensemble_cmd,
        eval_cmd,
        gradcheck,
        init_cmd,
        plot,
        predict,
        report,
        resume,
        runs_cmd,
        summary,
        sweep,
        train,
    )

    app.command("init", help=init_cmd.__doc__)(init_cmd.init)
    app.command("train", help=train.__doc__, no_args_is_help=True)(train.train)
    app.command("resume", help=resume.__doc__, no_args_is_help=True)(resume.resume)
    app.command("eval", help=eval_cmd.__doc__, no_args_is_help=True)(eval_cmd.evaluate)
    app.command("predict", help=predict.__doc__, no_args_is_help=True)(predict.predict)
    app.command("cv", help=cv.__doc__, no_args_is_help=True)(cv.cross_validate)
    app.command("gradcheck", help=gradcheck.__doc__, no_args_is_help=True)(gradcheck.gradcheck)
    app.command("summary", help=summary.__doc__, no_args_is_help=True)(summary.summary)
    app.command("doctor", help=doctor.__doc__, no_args_is_help=True)(doctor.doctor)
    app.command("sweep", help=sweep.__doc__, no_args_is_help=True)(sweep.sweep)
    app.command("plot", help=plot.__doc__, no_args_is_help=True)(plot.plot)
    app.command("report", help=report.__doc__, no_args_is_help=True)(report.report)
    app.command("ensemble", help=ensemble_cmd.__doc__, no_args_is_help=True)(ensemble_cmd.ensemble)
    app.add_typer(config_cmd.app, name="config")
    app.add_typer(data_cmd.app, name="data")
    app.add_typer(runs_cmd.app, name="runs")


register()


def main() -> None:
    app(prog_name="mlcli")
