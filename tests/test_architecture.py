"""The architecture rules of DESIGN.md, checked on the source: who may import what (parsed with ast, so imports
inside functions count too), the model registry against the schema, and every shipped config against the schema.

    layers, each importing only the layers below it (LAYERS, written once here):
    base (mlcli/errors.py, seeding.py, version.py) < nn < optim < config < data < models < runs < training < sweeps
    < insight < workflows < cli;  the package's __init__.py (the lazy public API) sits on top, and only cli imports it.

    only mlcli/cli imports typer and rich;  only mlcli/config imports pydantic and yaml;
    mlcli/nn and mlcli/optim import only numpy, the standard library, mlcli.nn and mlcli.optim.
"""

from __future__ import annotations

import ast
import sys
import typing
from pathlib import Path

import pytest
from conftest import CONFIGS, REPO

from mlcli.config.load import load_config
from mlcli.config.model_schema import ModelConfig
from mlcli.models.registry import MODEL_BUILDERS

PACKAGE = REPO / "mlcli"
SOURCES = sorted(PACKAGE.rglob("*.py"))
ONLY_IN = {"typer": "cli", "rich": "cli", "pydantic": "config", "yaml": "config", "matplotlib": "insight"}
CORE = ("nn", "optim")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, absolute (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module)
    return found


def subpackage(path: Path) -> str:
    """`cli` for mlcli/cli/app.py, `` for mlcli/errors.py."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


LAYERS = ("", "nn", "optim", "config", "data", "models", "runs", "training", "sweeps", "insight", "workflows", "cli")
FACADE = "api"  # mlcli/__init__.py and __main__.py


def layer_of(module: str) -> str | None:
    """The layer of an mlcli module name (`mlcli.data.pipeline` -> `data`, `mlcli.errors` -> ``, `mlcli` -> api)."""
    parts = module.split(".")
    if parts[0] != "mlcli":
        return None
    if len(parts) == 1:
        return FACADE
    return parts[1] if (PACKAGE / parts[1]).is_dir() else ""


def source_layer(path: Path) -> str:
    if path.parent == PACKAGE and path.name in ("__init__.py", "__main__.py"):
        return FACADE
    return subpackage(path)


def test_every_package_is_in_the_layer_order():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert packages == set(LAYERS) - {""}


def upward_imports(path: Path, modules: set[str]) -> list[str]:
    """The imports of `path` (a source under mlcli/) that reach a layer above its own."""
    mine = source_layer(path)
    found = []
    for module in sorted(m for m in modules if m):
        other = layer_of(module)
        if mine == FACADE or other is None or other == mine or (other == FACADE and mine == "cli"):
            continue  # the facade re-exports everything; the commands call the public API
        if other == FACADE or LAYERS.index(other) > LAYERS.index(mine):
            found.append(f"{path.relative_to(REPO)} ({mine or 'base'}) imports {module} ({other or 'base'})")
    return found


def test_each_layer_imports_only_the_layers_below_it():
    assert [line for path in SOURCES for line in upward_imports(path, imported_modules(path))] == []


def test_the_layer_check_sees_upward_imports():
    models_file = PACKAGE / "models" / "network.py"
    assert upward_imports(models_file, {"mlcli.training.metrics", "mlcli.nn.losses", "numpy"}) == [
        "mlcli/models/network.py (models) imports mlcli.training.metrics (training)"]
    assert upward_imports(PACKAGE / "runs" / "checkpoint.py", {"mlcli"}) != []
    assert upward_imports(PACKAGE / "cli" / "train.py", {"mlcli", "mlcli.workflows.train"}) == []


def test_sources_are_found_and_imports_are_parsed():
    assert len(SOURCES) > 30
    common = imported_modules(PACKAGE / "cli" / "common.py")
    assert "typer" in common and "mlcli.errors" in common


@pytest.mark.parametrize("library", sorted(ONLY_IN))
def test_ui_and_config_libraries_are_imported_only_by_their_layer(library):
    allowed = ONLY_IN[library]
    offenders = sorted(
        str(p.relative_to(REPO)) for p in SOURCES
        if subpackage(p) != allowed and any(m == library or m.startswith(library + ".") for m in imported_modules(p))
    )
    assert offenders == [], f"{library} may only be imported under mlcli/{allowed}/"


@pytest.mark.parametrize("core", CORE)
def test_numpy_core_imports_only_numpy_stdlib_and_itself(core):
    stdlib = set(sys.stdlib_module_names)
    allowed_own = tuple(f"mlcli.{c}" for c in CORE)
    offenders = {}
    for path in (p for p in SOURCES if subpackage(p) == core):
        bad = sorted(
            m for m in imported_modules(path)
            if m.split(".")[0] not in stdlib and m.split(".")[0] != "numpy"
            and not (m in allowed_own or m.startswith(tuple(a + "." for a in allowed_own)))
        )
        if bad:
            offenders[str(path.relative_to(REPO))] = bad
    assert offenders == {}


def test_every_module_has_a_docstring():
    missing = [str(p.relative_to(REPO)) for p in SOURCES if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def schema_model_types() -> set[str]:
    union = typing.get_args(ModelConfig)[0]
    return {tag for member in typing.get_args(union)
            for tag in typing.get_args(member.model_fields["type"].annotation)}


def test_model_registry_keys_equal_the_schema_model_types():
    assert len(schema_model_types()) >= 6
    assert set(MODEL_BUILDERS) == schema_model_types()


@pytest.mark.parametrize("config", sorted(p for p in CONFIGS.rglob("*") if p.is_file()), ids=lambda p: p.name)
def test_every_file_under_configs_validates(config):
    if config.parent.name == "sweeps":  # sweep files: validated as sweeps, their base as a config
        from mlcli.config.sweep_schema import load_sweep

        spec, cfg, _ = load_sweep(config)
        assert spec.parameters or spec.zip
    else:
        cfg = load_config(config)
    assert cfg.name and cfg.model.type in MODEL_BUILDERS


def test_newtons_method_is_no_special_case_outside_the_optimizers_and_the_schema():
    """Newton has the optimizers' step interface: no `is_newton` flag and no `"newton"` literal elsewhere."""
    offenders = []
    for path in SOURCES:
        if subpackage(path) in ("optim", "config"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Constant) and node.value == "newton") or (
                    isinstance(node, ast.Attribute) and node.attr == "is_newton"):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def union_types(union) -> set[str]:
    """The `type` literals of a discriminated union of config sections."""
    members = typing.get_args(typing.get_args(union)[0])
    return {tag for m in members for tag in typing.get_args(m.model_fields["type"].annotation)}


def test_optimizer_and_schedule_registries_have_the_schema_types():
    from mlcli.config.train_schema import OptimizerConfig, ScheduleConfig
    from mlcli.optim import OPTIMIZERS, SCHEDULES

    assert set(OPTIMIZERS) == union_types(OptimizerConfig)
    assert set(SCHEDULES) == union_types(ScheduleConfig)
    for key, cls in OPTIMIZERS.items():
        assert cls.type == key and isinstance(cls.slot_names, tuple)
