"""Every Python example of the README's "Python API" section runs as written (in order, in one namespace), from a
scratch folder that holds the shipped configs, so that the manual cannot drift from the API."""

from __future__ import annotations

import contextlib
import io
import os
import re

from conftest import CONFIGS, REPO

README = (REPO / "README.md").read_text()


def python_api_examples() -> list[str]:
    section = README.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.+?)\n```", section, re.S)


def test_the_python_api_section_has_examples():
    blocks = python_api_examples()
    assert len(blocks) >= 3
    assert all("import mlcli" in b for b in blocks)


def test_every_python_api_example_runs(tmp_path):
    (tmp_path / "configs").symlink_to(CONFIGS.resolve())
    namespace: dict = {}
    printed = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(printed):
            for i, block in enumerate(python_api_examples()):
                exec(compile(block, f"README.md Python API example {i + 1}", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert namespace["result"].status == "completed" and namespace["more"].history[-1]["epoch"] == 4
    assert len(namespace["log"].losses) >= 1
    assert printed.getvalue().splitlines()[0].startswith("completed ")
    assert len(list((tmp_path / "runs").iterdir())) >= 4
