"""The README is the user's manual: its test command is what CI runs, and it documents every config field."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from mlcli.cli.app import app
from mlcli.config import schema

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    block = README.split("**Install the test tools and run the whole test suite**", 1)[1]
    command = re.search(r"```bash\n(.+?)\n```", block, re.S).group(1).strip()
    assert "pytest" in command
    assert command in (REPO / ".ci" / "run").read_text()


def _sections() -> set[type[BaseModel]]:
    found = {schema.Config}
    todo = [schema.Config]
    while todo:
        for field in todo.pop().model_fields.values():
            stack = [field.annotation]
            while stack:
                tp = stack.pop()
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    if tp not in found:
                        found.add(tp)
                        todo.append(tp)
                else:
                    stack.extend(typing.get_args(tp))
    return found


def test_every_config_field_is_documented():
    missing = sorted({f"{cls.__name__}.{name}" for cls in _sections() for name in cls.model_fields
                      if not re.search(rf"[`{{, ]{name}[`}}:, ]", README)})
    assert not missing, f"README does not mention: {missing}"


def test_every_command_is_documented():
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    missing = [n for n in names if f"mlcli {n}" not in README]
    assert not missing, missing


def _command_paths(command, prefix=()):
    for name, sub in getattr(command, "commands", {}).items():
        yield (*prefix, name)
        yield from _command_paths(sub, (*prefix, name))


def test_every_sub_command_and_root_option_is_documented():
    """Nested commands appear as `config validate` (the table writes `mlcli config show` / `config validate`)."""
    import typer

    paths = list(_command_paths(typer.main.get_command(app)))
    assert ("config", "validate") in paths and ("init",) in paths
    missing = [" ".join(p) for p in paths if f"mlcli {p[0]}" not in README or " ".join(p) not in README]
    assert not missing, missing
    assert "`mlcli --version`" in README and "`-h`" in README
