"""The strict YAML reader: plain data with positions, YAML 1.2 scalars, one-line errors for unsafe input."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from mlcli.config.yaml_reader import MAX_CONFIG_BYTES, load_yaml, load_yaml_text, parse_scalar
from mlcli.errors import ConfigError

CONFIG = textwrap.dedent(
    """\
    # a comment
    seed: 7
    train:
      optimizer:
        lr: 1e-3
        momentum: 0.9
    model:
      layers:
        - kind: linear
          out: 64
        - {kind: relu}
    """
)


def error_of(text: str, source: str = "c.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        load_yaml_text(text, source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_returns_plain_data_and_one_based_locations_of_keys_and_items():
    data, loc = load_yaml_text(CONFIG, "c.yaml")
    assert data == {
        "seed": 7,
        "train": {"optimizer": {"lr": 0.001, "momentum": 0.9}},
        "model": {"layers": [{"kind": "linear", "out": 64}, {"kind": "relu"}]},
    }
    assert loc[("seed",)] == (2, 1)
    assert loc[("train", "optimizer", "lr")] == (5, 5)
    assert loc[("model", "layers", 0)] == (9, 7)
    assert loc[("model", "layers", 0, "out")] == (10, 7)
    assert loc[("model", "layers", 1)] == (11, 7)
    assert loc[("model", "layers", 1, "kind")] == (11, 8)
    assert set(loc) == {
        (),
        ("seed",),
        ("train",),
        ("train", "optimizer"),
        ("train", "optimizer", "lr"),
        ("train", "optimizer", "momentum"),
        ("model",),
        ("model", "layers"),
        ("model", "layers", 0),
        ("model", "layers", 0, "kind"),
        ("model", "layers", 0, "out"),
        ("model", "layers", 1),
        ("model", "layers", 1, "kind"),
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-3", 0.001),
        ("5e-4", 0.0005),
        ("1E5", 100000.0),
        ("-2.5e+3", -2500.0),
        ("0.01", 0.01),
        (".5", 0.5),
        ("3", 3),
        ("-4", -4),
        ("017", 17),
        ("0o17", 15),
        ("0x1f", 31),
        ("true", True),
        ("False", False),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("~", None),
        ("null", None),
        ("", None),
        ("relu", "relu"),
        ("1_000", "1_000"),
        ("2024-01-01", "2024-01-01"),
        ("'1e-3'", "1e-3"),
        ('"true"', "true"),
        ("[64, 32]", [64, 32]),
        ("{a: 1}", {"a": 1}),
        (".inf", math.inf),
        ("-.inf", -math.inf),
    ],
)
def test_parse_scalar_types_values_like_a_config_file(text, value):
    parsed = parse_scalar(text)
    assert parsed == value
    assert type(parsed) is type(value)
    data, _ = load_yaml_text(f"x: {text}\n", "c.yaml")
    assert data["x"] == value and type(data["x"]) is type(value)


def test_nan_is_a_float():
    assert math.isnan(parse_scalar(".nan"))
    assert math.isnan(load_yaml_text("x: .NaN", "c.yaml")[0]["x"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "x: !!python/object/apply:os.system ['echo hacked']\n",
            "c.yaml:1:4: tags are not allowed (found !!python/object/apply:os.system)",
        ),
        ("x: !!python/name:os.system\n", "c.yaml:1:4: tags are not allowed (found !!python/name:os.system)"),
        ("a:\n  b: !foo 3\n", "c.yaml:2:6: tags are not allowed (found !foo)"),
        ("a: !!str 3\n", "c.yaml:1:4: tags are not allowed (found !!str)"),
        ("!!map {a: 1}\n", "c.yaml:1:1: tags are not allowed (found !!map)"),
    ],
)
def test_rejects_every_explicit_tag(text, expected):
    assert error_of(text) == expected


def test_rejects_anchors_and_aliases_so_alias_bombs_never_expand():
    assert error_of("a: &x 1\nb: 2\n") == "c.yaml:1:4: anchors and aliases are not allowed (found anchor &x)"
    bomb = (
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n"
    )
    assert "anchors and aliases are not allowed" in error_of(bomb)
    assert error_of("a: 1\nb: *a\n") == "c.yaml:2:4: anchors and aliases are not allowed (found alias *a)"


def test_duplicate_key_names_both_lines():
    text = "train:\n  epochs: 3\n  lr: 0.1\n  momentum: 0.9\n  lr: 0.2\n"
    assert error_of(text) == "c.yaml:5:3: duplicate key 'lr' (first at line 3)"
    assert error_of("a: 1\n'a': 2\n") == "c.yaml:2:1: duplicate key 'a' (first at line 1)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "1: x\n",
            "c.yaml:1:1: mapping keys must be strings, found an int ('1'; quote it to make it a string)",
        ),
        ("a:\n  true: x\n", "c.yaml:2:3: mapping keys must be strings, found a boolean ('true'; quote it"),
        ("? [a, b]\n: 1\n", "c.yaml:1:3: mapping keys must be strings, found a list"),
        ("? {a: 1}\n: 1\n", "c.yaml:1:3: mapping keys must be strings, found a mapping"),
    ],
)
def test_rejects_keys_that_are_not_strings(text, expected):
    assert error_of(text).startswith(expected)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("- a\n- b\n", "a list"),
        ("just text\n", "a string"),
        ("", "an empty document"),
        ("# only\n", "an empty document"),
    ],
)
def test_top_level_must_be_a_mapping(text, found):
    assert error_of(text) == f"c.yaml:1:1: the top level must be a mapping of sections, found {found}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\n", "c.yaml:2:1: YAML syntax error: expected ',' or ']'"),
        ("a: 1\n  b: 2\n", "c.yaml:2:4: YAML syntax error: mapping values are not allowed here"),
        ("a:\n\tb: 1\n", "c.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token"),
        (
            "a: 1\n---\nb: 2\n",
            "c.yaml:2:1: YAML syntax error: a config is one YAML document, found a second one",
        ),
        ("a: b\x00\n", "c.yaml:1:5: character U+0000 is not allowed in YAML"),
    ],
)
def test_syntax_errors_give_line_and_column(text, expected):
    assert error_of(text).startswith(expected)


def test_deep_nesting_is_an_error_not_a_crash():
    assert error_of("a: " + "[" * 5000 + "]" * 5000) == "c.yaml: nested too deeply to be a config"


def test_huge_integer_is_an_error():
    assert error_of("a: " + "9" * 5000) == "c.yaml:1:4: integer with 5000 digits is too long"


def test_text_over_one_mib_is_refused_before_parsing():
    text = "a: " + "x" * MAX_CONFIG_BYTES
    assert (
        error_of(text)
        == f"c.yaml: config is {len(text)} bytes, more than the 1 MiB limit ({MAX_CONFIG_BYTES})"
    )


def test_parse_scalar_applies_the_same_safety_rules():
    with pytest.raises(
        ConfigError, match=r"^--set value '!!python/name:os.system':1:1: tags are not allowed"
    ):
        parse_scalar("!!python/name:os.system")
    with pytest.raises(ConfigError, match=r"^--set value '\[1, 2':1:6: YAML syntax error"):
        parse_scalar("[1, 2")
    with pytest.raises(ConfigError, match=r"^override:1:1: anchors and aliases are not allowed"):
        parse_scalar("&a 1", source="override")


def test_load_yaml_reads_a_file_and_names_it(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    data, loc = load_yaml(path)
    assert data["train"]["optimizer"]["lr"] == 0.001
    assert loc[("train", "optimizer", "lr")] == (5, 5)
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}:2:1: duplicate key 'a' \(first at line 1\)$"):
        load_yaml(path)


def test_load_yaml_file_errors(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"^{missing}: no such config file$"):
        load_yaml(missing)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * MAX_CONFIG_BYTES)
    with pytest.raises(ConfigError, match=rf"^{big}: config file is {MAX_CONFIG_BYTES + 3} bytes, more than"):
        load_yaml(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nname: caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{latin}:2: not UTF-8 text \(byte 0xe9 at offset 14\)$"):
        load_yaml(latin)
    with pytest.raises(ConfigError, match=rf"^{tmp_path}: is a directory"):
        load_yaml(tmp_path)
