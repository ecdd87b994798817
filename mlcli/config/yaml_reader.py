"""The strict, safe YAML reader behind every config file and `--set` value, with source positions.

    data, locations = load_yaml(Path("config.yaml"))
    locations[("train", "optimizer", "lr")]     # (14, 5): line and column of the key, 1-based
    parse_scalar("1e-3")                         # 0.001, the same rules as in a file

The text is only *composed* into a node tree by PyYAML's safe pipeline (reader, scanner, parser, composer:
the parts of `yaml.SafeLoader` before construction, with no implicit type resolvers); this module then builds
plain Python data from the nodes itself, so no YAML constructor (Python objects, sets, timestamps, merge keys)
ever runs. Refused, each as one `ConfigError("<source>:<line>:<col>: <what>")`:

- any explicit tag (`!!python/object/apply:os.system`, `!!str`, `!foo`, `!`): "tags are not allowed";
- anchors and aliases (`&a`, `*a`), which also rules out alias bombs: "anchors and aliases are not allowed";
- duplicate keys, with the line of the first; keys that are not strings (`1:`, `true:`, `[a]:`);
- a text over 1 MiB, a document whose top level is not a mapping, and YAML syntax errors (at their position).

Plain (unquoted) scalars are typed by the YAML 1.2 core schema, plus the exponent floats users write:

- null: empty, `~`, `null`, `Null`, `NULL`;   bool: `true`/`false` (also `True`, `TRUE`, ...). Only these:
  `yes`, `no`, `on`, `off`, `y`, `n` stay strings (YAML 1.1 would make them booleans);
- int: `[-+]?[0-9]+` (so `017` is 17, not YAML 1.1's octal 15), `0o17` is 15, `0x1f` is 31;
- float: `[-+]?(.5 | 1. | 1.5)` with an optional exponent, and also `1e-3`, `5e-4`, `1E5`, `-2.5e+3` without a
  dot (YAML 1.1 makes those strings); `.inf`, `-.inf`, `.nan` (also spelled `.Inf`/`.INF`, `.NaN`/`.NAN`)
  are floats, which config validation rejects where a finite number is needed;
- anything else (`relu`, `1_000`, `2024-01-01`, `1:30`) is a string. Quoted and block scalars are strings.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from yaml.composer import Composer
from yaml.error import MarkedYAMLError, YAMLError
from yaml.events import AliasEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from mlcli.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20

Locations = dict[tuple, tuple[int, int]]
"""Path of a mapping key or list item (`("model", "layers", 2, "kind")`) -> its (line, column), 1-based."""

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+")
_OCT_HEX = re.compile(r"0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


class _ComposeLoader(Reader, Scanner, Parser, Composer, BaseResolver):
    """`yaml.SafeLoader` up to the node tree (no constructor or implicit resolvers), refusing tags/anchors."""

    def __init__(self, text: str, source: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        BaseResolver.__init__(self)
        self.source = source

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        """Refuse an alias, anchor or explicit tag at its position, then compose as PyYAML does."""
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            found = f"alias *{event.anchor}"
            raise _error(
                self.source, event.start_mark, f"anchors and aliases are not allowed (found {found})"
            )
        if isinstance(event, NodeEvent) and event.anchor is not None:
            found = f"anchor &{event.anchor}"
            raise _error(
                self.source, event.start_mark, f"anchors and aliases are not allowed (found {found})"
            )
        tag = getattr(event, "tag", None)
        if tag is not None:
            written = "!!" + tag[len(_YAML_TAG_PREFIX) :] if tag.startswith(_YAML_TAG_PREFIX) else tag
            raise _error(self.source, event.start_mark, f"tags are not allowed (found {written})")
        return super().compose_node(parent, index)


def load_yaml(path: Path) -> tuple[Any, Locations]:
    """Read the config file at `path`; return `(data, locations)` as `load_yaml_text` does.

    Raises `ConfigError` for a missing or unreadable file, a file over 1 MiB, text that is not UTF-8, and
    every rule of `load_yaml_text`.
    """
    path = Path(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: config file is {size} bytes, more than the 1 MiB limit ({MAX_CONFIG_BYTES})"
            )
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = f"byte {raw[exc.start]:#04x} at offset {exc.start}"
        raise ConfigError(f"{path}:{line}: not UTF-8 text ({bad})") from None
    return load_yaml_text(text, str(path))


def load_yaml_text(text: str, source: str) -> tuple[Any, Locations]:
    """Parse the YAML config `text` read from `source` (a file name for messages).

    Returns `(data, locations)`: `data` is a dict of plain values (dict, list, str, int, float, bool, None)
    and `locations` maps the path of every mapping key and list item to its (line, column), 1-based; the
    empty path `()` maps to the start of the document. The top level must be a mapping.
    """
    data, locations, node = _load(text, source)
    if not isinstance(data, dict):
        what = "an empty document" if node is None else _kind(data)
        line, col = (1, 1) if node is None else _position(node.start_mark)
        raise ConfigError(f"{source}:{line}:{col}: the top level must be a mapping of sections, found {what}")
    return data, locations


def parse_scalar(text: str, *, source: str | None = None) -> Any:
    """Parse one `--set` value with the rules of a config file: `"0.01"` -> 0.01, `"true"` -> True,
    `"[64, 32]"` -> [64, 32], `"relu"` -> "relu", `"1e-3"` -> 0.001, `""` -> None, `"'1'"` -> "1".

    `source` names the value in messages (default `--set value '<text>'`). Raises `ConfigError` as a file
    would.
    """
    data, _, _ = _load(text, source if source is not None else f"--set value {text!r}")
    return data


def _load(text: str, source: str) -> tuple[Any, Locations, Node | None]:
    """Compose `text` into one node with the strict loader and build `(data, locations, root node)`."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: config is {size} bytes, more than the 1 MiB limit ({MAX_CONFIG_BYTES})")
    loader = None
    try:
        loader = _ComposeLoader(text, source)
        node = loader.get_single_node()
        if node is None:
            return None, {}, None
        locations: Locations = {(): _position(node.start_mark)}
        return _build(node, (), locations, source), locations, node
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join((exc.problem or "invalid YAML").split())
        if exc.context == "expected a single document in the stream":
            what = "a config is one YAML document, found a second one"
        elif exc.context:
            what += f" ({' '.join(exc.context.split())})"
        line, col = _position(mark) if mark is not None else (1, 1)
        raise ConfigError(f"{source}:{line}:{col}: YAML syntax error: {what}") from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError(f"{source}:{line}:{col}: character {char} is not allowed in YAML") from None
    except YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a config") from None
    finally:
        if loader is not None:
            loader.dispose()


def _build(node: Node, path: tuple, locations: Locations, source: str) -> Any:
    """Plain data from a composed node; records each mapping key's and list item's position in `locations`."""
    if isinstance(node, ScalarNode):
        return _scalar(node, source)
    if isinstance(node, SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            locations[(*path, index)] = _position(item.start_mark)
            items.append(_build(item, (*path, index), locations, source))
        return items
    if isinstance(node, MappingNode):
        mapping: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                found = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
                raise _error(source, key_node.start_mark, f"mapping keys must be strings, found {found}")
            key = _scalar(key_node, source)
            if not isinstance(key, str):
                found = f"{_kind(key)} ({key_node.value!r}; quote it to make it a string)"
                raise _error(source, key_node.start_mark, f"mapping keys must be strings, found {found}")
            if key in mapping:
                raise _error(
                    source, key_node.start_mark, f"duplicate key {key!r} (first at line {first_line[key]})"
                )
            first_line[key] = key_node.start_mark.line + 1
            locations[(*path, key)] = _position(key_node.start_mark)
            mapping[key] = _build(value_node, (*path, key), locations, source)
        return mapping
    raise _error(source, node.start_mark, f"unsupported YAML node {type(node).__name__}")


def _scalar(node: ScalarNode, source: str) -> Any:
    """Type a scalar: quoted and block scalars are strings; plain ones follow the module docstring's rules."""
    value = node.value
    if node.style is not None:
        return value
    if value in _NULL:
        return None
    if value in _BOOL:
        return _BOOL[value]
    try:
        if _INT.fullmatch(value):
            return int(value)
        if _OCT_HEX.fullmatch(value):
            return int(value, 0)
    except ValueError:
        raise _error(source, node.start_mark, f"integer with {len(value)} digits is too long") from None
    if _FLOAT.fullmatch(value):
        return float(value)
    if _INF.fullmatch(value):
        return -math.inf if value.startswith("-") else math.inf
    if _NAN.fullmatch(value):
        return math.nan
    return value


def _kind(value: Any) -> str:
    """How a value reads in a message: `a list`, `an int`, `a string`, `null`."""
    if value is None:
        return "null"
    names = {
        bool: "a boolean",
        int: "an int",
        float: "a float",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }
    return names.get(type(value), type(value).__name__)


def _position(mark: Any) -> tuple[int, int]:
    """PyYAML's 0-based mark as a 1-based (line, column)."""
    return mark.line + 1, mark.column + 1


def _error(source: str, mark: Any, what: str) -> ConfigError:
    """`ConfigError("<source>:<line>:<col>: <what>")` at a PyYAML mark."""
    line, col = _position(mark)
    return ConfigError(f"{source}:{line}:{col}: {what}")
