"""Start from a shipped example config: list them, or write one to a file.

The examples are the configs of the README's "Shipped configs" table, shipped inside the package (mlcli/examples/,
of which the repository's configs/ is a symlink), so a user who installed the wheel has them too. Every example names
a built-in or synthetic dataset, so the written file trains from any folder.

Examples:
  mlcli init
  mlcli init quickstart && mlcli train quickstart.yaml
  mlcli init cnn_digits --out configs/my_cnn.yaml
  mlcli init knn --out knn.yaml --force
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import guarded, out
from mlcli.errors import ConfigError, RunIOError


def example_texts() -> dict[str, str]:
    """The shipped example configs: name (the file stem) -> YAML text, sorted by name."""
    from importlib.resources import files

    folder = files("mlcli") / "examples"
    found = {entry.name.removesuffix(".yaml"): entry.read_text(encoding="utf-8")
             for entry in folder.iterdir() if entry.name.endswith(".yaml")}
    return dict(sorted(found.items()))


def describe(text: str) -> str:
    """The first sentence of the example's leading comment: what it trains, on what."""
    first = next((line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")), "")
    sentence = first.split(". ", 1)[0].rstrip(".:")
    return sentence + "." if sentence else ""


def unknown_example(name: str, names: list[str]) -> ConfigError:
    from difflib import get_close_matches

    close = get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"init: no example config named '{name}'; {hint}available: {', '.join(names)}")


def write_example(text: str, target: Path, force: bool) -> None:
    """Write `text` to `target`; refuses to replace an existing file unless `force`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w" if force else "x", encoding="utf-8") as file:  # "x": never replace a file
            file.write(text)
    except FileExistsError:
        raise ConfigError(f"{target}: already exists; pass --force to overwrite it, or --out to write elsewhere") \
            from None
    except OSError as error:
        raise RunIOError(f"{target}: cannot write the example config: {error.strerror or error}") from None


def init(
    example: str | None = typer.Argument(None, show_default=False,
                                         help="Name of the example to write; without it, list the examples. "
                                              "Example: quickstart"),
    out_path: Path | None = typer.Option(None, "--out", "-o", show_default=False,
                                         help="File to write (default: EXAMPLE.yaml in the current folder); a "
                                              "folder means EXAMPLE.yaml inside it. Example: --out configs/mine.yaml"),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite the file if it exists."),
) -> None:
    with guarded():
        examples = example_texts()
        if example is None:
            width = max(map(len, examples))
            for name, text in examples.items():
                out.print(f"{name:<{width}}  {describe(text)}", highlight=False, markup=False)
            return
        if example.removesuffix(".yaml") not in examples:
            raise unknown_example(example, list(examples))
        example = example.removesuffix(".yaml")
        target = out_path if out_path is not None else Path(f"{example}.yaml")
        if target.is_dir():
            target = target / f"{example}.yaml"
        write_example(examples[example], target, force)
        out.print(f"wrote {target}; train it with: mlcli train {target}", highlight=False, markup=False)
