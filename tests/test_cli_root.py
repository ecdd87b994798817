"""The root command: --version, -h everywhere, click's usage errors as one `error:` line, `mlcli init` and the
example configs shipped in the package, and the light imports that keep `mlcli --help` fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from conftest import CONFIGS, REPO

import mlcli
from mlcli.cli.app import app

EXAMPLES = REPO / "mlcli" / "examples"


def command_paths(command=None, prefix=()) -> list[tuple[str, ...]]:
    """Every command and group of the CLI as its argument path: (), ("train",), ("config",), ("config", "show"), ..."""
    command = command or typer.main.get_command(app)
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*prefix, name))
    return paths


def test_version_prints_the_package_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"mlcli {mlcli.__version__}\n"


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "mlcli")
def test_dash_h_is_help_on_every_command(cli, path):
    short, long = cli(*path, "-h"), cli(*path, "--help")
    assert short.exit_code == 0 == long.exit_code, short.stderr
    assert short.stdout.startswith(f"Usage: mlcli {' '.join(path)}".rstrip())
    assert short.stdout == long.stdout


def test_every_command_is_listed_with_its_path():
    paths = command_paths()
    assert {("init",), ("train",), ("eval",), ("cv",), ("config", "validate"), ("data", "list")} <= set(paths)


@pytest.mark.parametrize(("args", "fragments"), [
    (["eval", "run", "--split", "tst"], ["error: eval: invalid value for '--split': 'tst' is not one of 'test', "
                                         "'val', 'train'"]),
    (["train", "x.yaml", "--foo"], ["train: no such option: --foo", "mlcli train -h"]),
    (["cv", "x.yaml", "--fold", "3"], ["cv: no such option: --fold", "did you mean --folds?"]),
    (["train", "--quiet"], ["train: missing argument 'config'"]),
    (["eval", "run", "--split"], ["eval: option '--split' requires an argument"]),
    (["trian", "x.yaml"], ["no such command 'trian'", "did you mean 'train'?"]),
    (["config", "shw"], ["config: no such command 'shw'", "did you mean 'show'?"]),
    (["--bogus"], ["no such option: --bogus"]),
    (["train", "a.yaml", "b.yaml"], ["train: got unexpected extra argument", "b.yaml"]),
], ids=["bad-choice", "unknown-option", "option-typo", "missing-argument", "option-without-value",
        "unknown-command", "unknown-sub-command", "unknown-root-option", "extra-argument"])
def test_usage_errors_are_one_error_line_with_exit_2(cli, one_line_error, args, fragments):
    result = cli(*args)
    one_line_error(result, 2, *fragments)
    assert "Usage:" not in result.stdout + result.stderr


def test_usage_errors_are_one_line_in_a_real_process(mlcli, one_line_error):
    one_line_error(mlcli("eval", "run", "--split", "tst"), 2, "eval: invalid value for '--split'")
    one_line_error(mlcli("trian"), 2, "did you mean 'train'?")


def test_a_command_without_arguments_still_shows_its_help(cli):
    result = cli("train")
    assert "Usage: mlcli train" in result.stdout + result.stderr
    assert "error:" not in result.stderr


def test_configs_folder_is_the_package_examples_folder():
    assert CONFIGS.resolve() == EXAMPLES.resolve()
    assert (EXAMPLES / "quickstart.yaml").is_file()
    import tomllib

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mlcli"]
    shipped = {p for pattern in patterns for p in (REPO / "mlcli").glob(pattern)}
    assert shipped == set(EXAMPLES.rglob("*.yaml"))  # every example, sweeps included, is in the wheel


def test_init_lists_every_example_with_a_description(cli):
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert set(lines) == {p.stem for p in EXAMPLES.glob("*.yaml")}
    assert lines["quickstart"].startswith("Quickstart: an MLP")
    assert all(description.strip().endswith(".") for description in lines.values())


def test_init_writes_an_example_that_validates(cli, tmp_path):
    target = tmp_path / "sub" / "x.yaml"
    result = cli("init", "quickstart", "--out", target)
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == (EXAMPLES / "quickstart.yaml").read_text()
    assert str(target) in result.stdout
    validated = cli("config", "validate", target)
    assert validated.exit_code == 0, validated.stderr


def test_init_into_a_folder_names_the_file_after_the_example(cli, tmp_path):
    assert cli("init", "knn.yaml", "--out", tmp_path).exit_code == 0
    assert (tmp_path / "knn.yaml").read_text() == (EXAMPLES / "knn.yaml").read_text()


def test_init_refuses_to_overwrite_unless_forced(cli, one_line_error, tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("name: mine\n")
    one_line_error(cli("init", "mlp", "--out", target), 2, str(target), "already exists", "--force")
    assert target.read_text() == "name: mine\n"
    assert cli("init", "mlp", "--out", target, "--force").exit_code == 0
    assert target.read_text() == (EXAMPLES / "mlp.yaml").read_text()


def test_init_of_an_unknown_example_suggests_the_closest(cli, one_line_error, tmp_path):
    one_line_error(cli("init", "quikstart", "--out", tmp_path / "q.yaml"), 2, "'quikstart'",
                   "did you mean 'quickstart'?", "available: adagrad")
    assert not (tmp_path / "q.yaml").exists()


@pytest.mark.parametrize("module", ["mlcli.cli.common", "mlcli.cli.init_cmd"])
def test_shared_cli_modules_import_no_heavy_library(module):
    code = (f"import sys, {module}; "
            "print(' '.join(m for m in ('rich', 'pydantic', 'yaml', 'numpy') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(REPO)).stdout.split()
    assert loaded == []


def test_lazy_console_prints_through_rich(capsys):
    from mlcli.cli.common import err, out

    out.print("[bold]x[/bold]", 1)
    err.print("to stderr")
    captured = capsys.readouterr()
    assert captured.out == "x 1\n" and captured.err == "to stderr\n"
