"""Load a config: read the YAML strictly, apply `--set` overrides, validate, and explain failures by location.

    cfg = load_config(Path("config.yaml"), overrides=["train.optimizer.lr=0.01"])

Every failure is one `ConfigError` line of the form
`config.yaml:14:5: train.optimizer.momentun: unknown key; did you mean 'momentum'?`. A validated `Config` keeps
its source name and YAML locations, so that a later failure about a field (a conv stack that does not fit the
data, found while building the model) is told the same way: `located(config, "model.layers.2 (conv): ...")`.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mlcli.config.schema import Config
from mlcli.config.yaml_reader import load_yaml, load_yaml_text, parse_scalar
from mlcli.errors import ConfigError

Locations = dict[tuple, tuple[int, int]]


def load_config(path: Path, overrides: list[str] | tuple[str, ...] = (), seed: int | None = None) -> Config:
    """Read, override and validate the config file at `path`."""
    data, locations = load_yaml(Path(path))
    return build_config(data, str(path), locations, overrides, seed)


def load_config_text(text: str, source: str, overrides=(), seed: int | None = None) -> Config:
    data, locations = load_yaml_text(text, source)
    return build_config(data, source, locations, overrides, seed)


def build_config(data: Any, source: str, locations: Locations, overrides=(), seed: int | None = None) -> Config:
    """Validate plain data (as read from YAML) after applying `key=value` overrides."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections (data, model, train, ...)")
    data = copy.deepcopy(data)
    for item in overrides:
        apply_override(data, item)
    if seed is not None:
        data["seed"] = seed
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(explain(err, source, locations, data, overrides)) from None
    config._source, config._locations = source, dict(locations)
    return config


def located(config: Config, message: str) -> str:
    """`message`, which starts with a dotted field path (`model.layers.2 (conv): ...`, `model.type cnn ...`),
    prefixed with the config's source and the line:col of that field, or of its nearest written parent
    (`conv.yaml:12:5: model.layers.2 (conv): ...`); unchanged for a config that was not read from a source."""
    source = config._source
    if source is None:
        return message
    field = re.match(r"([a-z_]+(?:\.[a-z_0-9]+)*)(?=[: ]|$)", message)
    path = tuple(int(p) if p.isdigit() else p for p in field.group(1).split(".")) if field else ()
    while path and path not in config._locations:
        path = path[:-1]
    if not path:  # nothing of that field was written in the file: name the file alone
        return f"{source}: {message}"
    line, col = config._locations[path]
    return f"{source}:{line}:{col}: {message}"


def apply_override(data: dict, item: str) -> None:
    """Apply one `dotted.key=value` override in place; list items are addressed by index (`hidden.0=64`)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.optimizer.lr=0.01")
    parts = key.strip().split(".")
    value = parse_scalar(raw)
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, create=True, where=".".join(parts[: depth + 1]), item=item)
    last = parts[-1]
    if isinstance(node, list):
        index = _index(node, last, item)
        node[index] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"--set {item!r}: {'.'.join(parts[:-1])} is a value, not a section")


def _child(node: Any, part: str, *, create: bool, where: str, item: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, item)]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {item!r}: {where} is a value, not a section")
    if part not in node or node[part] is None:
        node[part] = {}
    return node[part]


def _index(node: list, part: str, item: str) -> int:
    try:
        index = int(part)
    except ValueError:
        raise ConfigError(f"--set {item!r}: '{part}' must be a list index") from None
    if not -len(node) <= index < len(node):
        raise ConfigError(f"--set {item!r}: index {index} is out of range for a list of {len(node)}")
    return index


# ------------------------------------------------------------------------------------ explaining errors


def explain(err: ValidationError, source: str, locations: Locations, data: Any, overrides=(),
            root: Any = Config) -> str:
    """Turn pydantic's first error into `file:line:col: field.path: what was expected, what was found`; `root`
    is the schema the data was validated against (a run's Config, or another file's, e.g. a sweep's)."""
    errors = err.errors(include_url=False)
    # the deepest is the most specific (union branches); among those, an unknown key says most
    rank = {"extra_forbidden": 2, "union_tag_invalid": 1}
    first = max(errors, key=lambda e: (len(e["loc"]), rank.get(e["type"], 0)))
    path = data_path(first["loc"], data, root)
    if first["type"] == "union_tag_invalid":
        path = (*path, "type")
    message = describe(first, path, data, root)
    named = re.match(r"([a-z_]+(?:\.[a-z_0-9]+)*): (.*)", message) if first["type"] == "value_error" else None
    if named and not path:  # a rule across sections names its own field: "train.epochs: has no effect ..."
        path = tuple(int(p) if p.isdigit() else p for p in named.group(1).split("."))
        message = named.group(2)
    where = _where(source, path, locations, first["type"] == "missing")
    field = ".".join(str(p) for p in path) or "(top level)"
    if any(o.split("=", 1)[0].strip() == field for o in overrides):
        return f"--set {field}: {message}"
    return f"{where}: {field}: {message}"


PYDANTIC_TAGS = ("function-", "literal[", "constrained-", "tagged-union[", "list[")  # location parts, not fields


def data_path(loc: tuple, data: Any, root: Any = Config) -> tuple:
    """Pydantic's error location as a path in the YAML: drop the union tags it inserts, following the schema.

    `("train", "optimizer", "momentum", "lr")` -> `("train", "optimizer", "lr")` (the tag of the discriminated
    union), `("model", "mlp", "hidden", 0, "HiddenLayer", "units")` -> `("model", "hidden", 0, "units")`.
    """
    path: list = []
    cls: Any = root
    for part in loc:
        if isinstance(cls, tuple):  # a union: this part names the member
            cls = next((m for m in cls if part in _tags(m) or part == m.__name__), None)
            continue
        if (isinstance(part, str) and (part.startswith(PYDANTIC_TAGS) or part in (
                "int", "float", "str", "bool", "list", "dict"))) or (isinstance(cls, type) and part == cls.__name__):
            continue
        path.append(part)
        cls = _step(cls, part)
    return tuple(path)


def _tags(member: Any) -> tuple:
    field = member.model_fields.get("type")
    return typing.get_args(field.annotation) if field is not None else ()


def _step(cls: Any, part: Any) -> Any:
    """The schema one step below `cls` by key or index `part` (None once outside the schema)."""
    if isinstance(cls, list):
        return cls[0] if isinstance(part, int) else None
    if isinstance(cls, type) and issubclass(cls, BaseModel) and part in cls.model_fields:
        return _unwrap(cls.model_fields[part].annotation)
    return None


def _where(source: str, path: tuple, locations: Locations, missing: bool) -> str:
    probe = path[:-1] if missing else path
    while probe and probe not in locations:
        probe = probe[:-1]
    if probe in locations:
        line, col = locations[probe]
        return f"{source}:{line}:{col}"
    return source


def describe(error: dict, path: tuple, data: Any, root: Any = Config) -> str:
    """What was expected and what was found, in the words of the config rather than pydantic's."""
    kind, ctx, got = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        valid = valid_keys(path[:-1], data, root)
        hint = difflib.get_close_matches(str(path[-1]), valid, n=1)
        tail = f"did you mean '{hint[0]}'?" if hint else f"valid keys: {', '.join(valid)}" if valid else ""
        return f"unknown key; {tail}".rstrip("; ")
    if kind == "missing":
        return "required field is missing"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound}, got {got!r}"
    if kind in ("union_tag_invalid", "literal_error"):
        expected = ctx.get("expected_tags") or ctx.get("expected", "")
        options = [o.strip().strip("'") for o in str(expected).replace(" or ", ", ").split(",")]
        found = ctx.get("tag", got)
        hint = difflib.get_close_matches(str(found), options, n=1)
        suffix = f"; did you mean '{hint[0]}'?" if hint else ""
        return f"must be one of {', '.join(options)}; got {found!r}{suffix}"
    if kind == "union_tag_not_found":
        return "needs a 'type' key"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {_shown(got)}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"expected a finite number, got {_shown(got)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_shown(got)}"
    if kind in ("string_type",):
        return f"expected a string, got {_shown(got)}"
    if kind in ("list_type",):
        return f"expected a list, got {_shown(got)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (a section with keys), got {_shown(got)}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s), got {_shown(got)}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}, got {got!r}"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _shown(value: Any) -> str:
    kind = type(value).__name__
    kind = {"str": "a string", "dict": "a mapping", "list": "a list", "NoneType": "nothing", "bool": "a boolean",
            "int": "an integer", "float": "a number"}.get(kind, kind)
    return f"{kind} ({yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()})"


def valid_keys(path: tuple, data: Any, root: Any = Config) -> list[str]:
    """Field names of the config section at `path`, following `type` discriminators through `data`."""
    cls: Any = root
    node: Any = data
    for part in path:
        if isinstance(cls, list):  # a list of items: the index picks one
            cls = cls[0]
        elif isinstance(cls, type) and issubclass(cls, BaseModel) and part in cls.model_fields:
            cls = _unwrap(cls.model_fields[part].annotation)
        else:
            return []
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
        if isinstance(cls, list) and not isinstance(part, int) and isinstance(node, list):
            continue
        cls = _pick_member(cls, node)
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return []


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and -len(node) <= part < len(node)


def _unwrap(tp: Any) -> Any:
    """Strip Annotated/Optional; a list becomes `[item_type]`, a union of sections a list of its members."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is list:
        return [_unwrap(typing.get_args(tp)[0])]
    if origin is typing.Union or origin is types.UnionType:
        members = [_unwrap(a) for a in typing.get_args(tp)]
        sections = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if len(sections) == 1:
            return sections[0]
        return tuple(sections)
    return tp


def _pick_member(cls: Any, node: Any) -> Any:
    """From a union of sections, the one whose `type` literal matches the data's `type`."""
    if not isinstance(cls, tuple):
        return cls
    wanted = node.get("type") if isinstance(node, dict) else None
    for member in cls:
        literal = member.model_fields.get("type")
        if literal is not None and wanted in typing.get_args(literal.annotation):
            return member
    return None
