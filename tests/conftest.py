"""Shared fixtures of the end-to-end suites: the CLI run in-process, configs written to tmp_path, run readers.

    def test_x(cli, write_config, runs_dir):
        result = cli("train", write_config(TINY_IRIS), "--runs-dir", runs_dir, "--quiet")
        assert result.exit_code == 0

`cli(*args)` invokes `mlcli.cli.app.app` with typer's CliRunner (stdout and stderr captured separately, the
exception kept in `result.exception`); `mlcli(*args)` runs `python -m mlcli` in a real process for what needs one
(exit statuses set by signals, warnings that pytest would otherwise capture). `one_line_error(result, code, ...)`
asserts the CLI's error contract: exit `code`, exactly one stderr line starting with "error:", no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlcli.cli.app import app

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"

# A network that trains in a few milliseconds per epoch (iris: 150 samples, 4 features).
TINY_IRIS = """\
name: tiny
data:
  type: iris
model:
  type: mlp
  hidden: [8]
train:
  epochs: 3
  batch_size: 16
  optimizer:
    type: momentum
    lr: 0.05
    momentum: 0.9
"""

TIMING_KEYS = ("seconds", "samples_per_sec")


def invoke(*args: object):
    """Run the CLI in-process; arguments are converted with str()."""
    return CliRunner().invoke(app, [str(a) for a in args])


def run_mlcli(*args: object, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python -m mlcli ...` in a child process and wait for it."""
    return subprocess.run([sys.executable, "-m", "mlcli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, check=False)


def assert_one_line_error(result, code: int, *fragments: str) -> str:
    """The CLI's error contract: exit `code`, one stderr line "error: ...", no traceback; returns the line."""
    stderr = result.stderr
    assert "Traceback" not in stderr and "Traceback" not in result.stdout, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    exit_code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert exit_code == code, f"exit {exit_code}, expected {code}: {lines[0]}"
    return lines[0]


def train_run(config: Path, runs_dir: Path, *args: object) -> Path:
    """Train `config` in-process with --quiet and return the new run directory (fails the test on error)."""
    before = set(Path(runs_dir).iterdir()) if Path(runs_dir).exists() else set()
    result = invoke("train", config, "--runs-dir", runs_dir, "--quiet", *args)
    assert result.exit_code == 0, result.stderr + repr(result.exception)
    created = set(Path(runs_dir).iterdir()) - before
    assert len(created) == 1, created
    return created.pop()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def checkpoint_meta(path: Path) -> dict:
    """meta.json of a checkpoint, read as plain JSON from the zip."""
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("meta.json"))


def checkpoint_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if not k.endswith(".json")}


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes, keyed by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.fixture
def cli():
    return invoke


@pytest.fixture
def mlcli():
    return run_mlcli


@pytest.fixture
def one_line_error():
    return assert_one_line_error


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def write_config(tmp_path: Path):
    """`write_config(text, name="config.yaml") -> Path`: a dedented YAML file in tmp_path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
