"""No code path in mlcli can deserialize code: a scan of every source file for pickle, eval and friends.

The scan reads the code of each `mlcli/**/*.py` file with its comments and plain string literals (docstrings
included) blanked out, so that documentation may name what is forbidden ("never yaml.load(") while code may
not; f-strings are scanned whole. One documented exception: `mlcli/data/restricted_unpickle.py` reads the
CIFAR-10 python format and may use `pickle.Unpickler`; instead of the pickle rule it must define a
`find_class` that refuses every global by default, which is checked here by feeding it malicious pickles.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import os
import pickle
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mlcli"
RESTRICTED_UNPICKLE = PACKAGE / "data" / "restricted_unpickle.py"

FORBIDDEN: dict[str, re.Pattern[str]] = {
    "pickle": re.compile(
        r"\bimport\s+(?:[\w.]+(?:\s+as\s+\w+)?\s*,\s*)*_?c?pickle\b"  # import pickle / import os, pickle
        r"|\bfrom\s+_?c?pickle\b"  # from pickle import loads
        r"|(?<![\w.])_?c?pickle\s*\."  # pickle.loads(...)
    ),
    "allow_pickle=True": re.compile(r"\ballow_pickle\s*=\s*True\b"),
    "yaml.load(": re.compile(r"\byaml\s*\.\s*(?:(?:full_|unsafe_)?load(?:_all)?)\s*\("),
    "FullLoader/UnsafeLoader": re.compile(r"\b(?:FullLoader|UnsafeLoader)\b|\byaml\s*\.\s*Loader\b"),
    "eval(": re.compile(r"(?<![\w.])eval\s*\("),
    "exec(": re.compile(r"(?<![\w.])exec\s*\("),
    "importlib.import_module(": re.compile(r"(?<![\w])import_module\s*\("),
    "__import__(": re.compile(r"(?<![\w.])__import__\s*\("),
    "marshal": re.compile(r"\bmarshal\b"),
}


def code_only(source: str) -> list[str]:
    """The lines of `source` with comments and non-f-string literals replaced by spaces (positions kept)."""
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        is_plain_string = (
            tok.type == tokenize.STRING and "f" not in tok.string.split(tok.string[-1])[0].lower()
        )
        if tok.type != tokenize.COMMENT and not is_plain_string:
            continue
        (row0, col0), (row1, col1) = tok.start, tok.end
        for row in range(row0, row1 + 1):
            line = lines[row - 1]
            start = col0 if row == row0 else 0
            end = col1 if row == row1 else len(line)
            lines[row - 1] = line[:start] + " " * (end - start) + line[end:]
    return lines


def violations(source: str, name: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """`name:line: <rule>: <code>` for every forbidden construct in the code of `source`."""
    found = []
    for number, line in enumerate(code_only(source), start=1):
        for rule, pattern in FORBIDDEN.items():
            if rule not in skip and pattern.search(line):
                found.append(f"{name}:{number}: {rule}: {line.strip()}")
    return found


def test_scanner_finds_each_forbidden_construct_and_ignores_documentation():
    bad = [
        "import pickle",
        "import os, pickle as p",
        "from pickle import loads",
        "x = pickle.loads(b)",
        "import _pickle",
        "np.load(f, allow_pickle=True)",
        "yaml.load(text)",
        "yaml.unsafe_load(text)",
        "loader = yaml.FullLoader",
        "yaml.load_all(t, Loader=UnsafeLoader)",
        "eval(expr)",
        "y = eval (s)",
        "exec(code)",
        "importlib.import_module(name)",
        "__import__('os')",
        "import marshal",
        "f'{eval(x)}'",
    ]
    for line in bad:
        assert violations(line + "\n", "m.py"), line
    fine = (
        '"""Never pickle.loads, eval(, yaml.load( or allow_pickle=True here."""\n'
        "model.eval()\n"
        "value = ast.literal_eval(text)\n"
        "np.load(f, allow_pickle=False)\n"
        "yaml.compose(text)  # not yaml.load(text)\n"
        "name = 'exec(' + 'pickle.loads'\n"
        "evaluate(x)\n"
    )
    assert violations(fine, "m.py") == []
    assert violations("x = 1\ny = eval(s)\n", "m.py") == ["m.py:2: eval(: y = eval(s)"]


def test_no_source_file_can_deserialize_or_run_code():
    files = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "errors.py" in files
    found = []
    for path in files:
        skip = frozenset({"pickle"}) if path == RESTRICTED_UNPICKLE else frozenset()
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), skip)
    assert found == [], "forbidden constructs:\n" + "\n".join(found)


CALLS: list[str] = []


def record(what: str) -> str:
    CALLS.append(what)
    return what


class _Payload:
    """A pickle of this calls `target(*args)` when loaded by an unrestricted unpickler."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return (self.target, self.args)


def test_restricted_unpickler_refuses_globals_by_default():
    if not RESTRICTED_UNPICKLE.exists():
        pytest.skip(f"{RESTRICTED_UNPICKLE.relative_to(ROOT)} is not written yet")
    tree = ast.parse(RESTRICTED_UNPICKLE.read_text(encoding="utf-8"))
    defines = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(isinstance(item, ast.FunctionDef) and item.name == "find_class" for item in node.body)
    ]
    assert defines, "restricted_unpickle.py must define a pickle.Unpickler subclass with its own find_class"

    module = importlib.import_module("mlcli.data.restricted_unpickle")
    unpicklers = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, pickle.Unpickler) and "find_class" in vars(obj)
    ]
    assert unpicklers, "restricted_unpickle.py defines no pickle.Unpickler subclass overriding find_class"
    payloads = [
        _Payload(record, "called"),
        _Payload(os.getpid),
        _Payload(eval, "1 + 1"),
        _Payload(os.system, ""),
    ]
    for cls in unpicklers:
        for payload in payloads:
            unpickler = build(cls, io.BytesIO(pickle.dumps(payload)))
            with pytest.raises(Exception):  # noqa: B017 - any refusal will do, a result will not
                unpickler.load()
        with pytest.raises(Exception):  # noqa: B017
            build(cls, io.BytesIO(b"")).find_class("subprocess", "Popen")
    assert CALLS == []


def build(cls: type, file: io.BytesIO) -> pickle.Unpickler:
    """An instance of the unpickler `cls` over `file`, its other required arguments set to a file name."""
    params = list(inspect.signature(cls).parameters.values())[1:]
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = {p.name: "<test>" for p in params if p.default is p.empty and p.kind in named}
    return cls(file, **required)
