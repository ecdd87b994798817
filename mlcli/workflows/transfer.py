"""Transfer learning and warm starts: `model.init_from`, `model.init_from_map`, `model.freeze`, `freeze_batchnorm`.

    callbacks = apply_transfer(cfg, model, base_dir, resuming=False, quiet=True)   # called by run_config

`init_from` (a checkpoint, or a run directory: its best.npz, read by the safe reader) copies into the freshly built
network every array (parameters and batchnorm statistics) whose dotted name and shape match; `init_from_map`
renames checkpoint prefixes first (`{"0.linear": "2.linear"}`: the checkpoint's `0.linear.*` go to this model's
`2.linear.*`). Arrays of another shape (a head for another number of classes) keep their fresh initialization. The
report (copied; skipped, with why; unused checkpoint arrays) goes into summary.json under `init_from` and, unless
quiet, to stderr at the start of the run. A resumed run takes its weights from last.npz instead.

`freeze` (glob patterns over parameter names, `"0.*"`) keeps those parameters fixed: the trainer hands only the
others to the optimizer, the penalty and clipping (`mlcli.training.trainer`). A pattern that matches nothing is a
config error listing the parameter names. With `freeze_batchnorm` (the default) a batchnorm layer whose parameters
are all frozen also keeps its running statistics: it runs in eval mode during training.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import numpy as np

from mlcli.config.load import located
from mlcli.errors import ConfigError
from mlcli.training.callbacks import Callback


class TransferReport(Callback):
    """Puts what init_from copied and what is frozen into the run's summary; prints it unless quiet."""

    name = "transfer"

    def __init__(self, report: dict | None, frozen: list[str], quiet: bool) -> None:
        self.report = report
        self.frozen = frozen
        self.quiet = quiet

    def on_train_begin(self, run) -> None:
        if self.report is not None:
            run.summary["init_from"] = self.report
        if self.frozen:
            run.summary["frozen"] = self.frozen
        if not self.quiet:
            for line in describe(self.report, self.frozen):
                print(line, file=sys.stderr)


def describe(report: dict | None, frozen: list[str]) -> list[str]:
    """One line for the copy, one per skipped array, one for the frozen parameters."""
    lines = []
    if report is not None:
        lines.append(f"init_from {report['source']}: copied {len(report['copied'])} arrays, skipped "
                     f"{len(report['skipped'])}, {len(report['unused'])} checkpoint arrays unused")
        lines += [f"  skipped {s['name']}: {s['reason']}" for s in report["skipped"]]
    if frozen:
        lines.append(f"frozen: {', '.join(frozen)}")
    return lines


def apply_transfer(cfg, model, base_dir: Path | None, *, resuming: bool = False, quiet: bool = True) -> list:
    """Initialize `model` from `model.init_from` (unless resuming) and mark its frozen parameters; returns the
    callbacks that report it (none when the config asks for neither)."""
    section = cfg.model
    if not model.is_network or not (getattr(section, "init_from", None) or getattr(section, "freeze", None)):
        return []
    report = None
    if section.init_from and not resuming:
        report = init_from(model, resolve_source(section.init_from, base_dir), section.init_from_map)
    frozen = freeze(cfg, model)
    return [TransferReport(report, frozen, quiet)]


def resolve_source(source: str, base_dir: Path | None) -> Path:
    """`init_from` as a path: as given (or from the current directory), else next to the config."""
    path = Path(source).expanduser()
    if not path.is_absolute() and not path.exists() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    return path


def rename(name: str, mapping: dict[str, str]) -> str:
    """The model name a checkpoint array `name` is copied to: the longest matching prefix of `mapping` replaced."""
    for prefix in sorted(mapping, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return mapping[prefix] + name[len(prefix):]
    return name


def init_from(model, source: Path, mapping: dict[str, str] | None = None) -> dict:
    """Copy every array of the checkpoint `source` whose (renamed) name and shape match into `model`.

    Returns {"source", "copied": [names], "skipped": [{"name", "reason"}], "unused": [checkpoint names]}."""
    from mlcli.runs.rundir import checkpoint_path
    from mlcli.runs.snapshot import load_model

    path = checkpoint_path(source)
    if not path.is_file():
        raise ConfigError(f"model.init_from: {source}: no such checkpoint or run directory")
    loaded = load_model(path)
    if not loaded.model.is_network:
        raise ConfigError(f"model.init_from: {path} holds a {loaded.config.model.type} "
                          f"{'ensemble' if hasattr(loaded.model, 'members') else 'model'}; init_from takes the "
                          f"weights of one network")
    mapping = dict(mapping or {})
    incoming = {rename(name, mapping): (name, arr) for name, arr in loaded.model.state().items()}
    state = model.state()
    copied, skipped = [], []
    for name, current in state.items():
        if name not in incoming:
            skipped.append({"name": name, "reason": "absent from the checkpoint"})
            continue
        src_name, arr = incoming[name]
        if arr.shape != current.shape:
            skipped.append({"name": name, "reason": f"shape differs: {tuple(arr.shape)} in the checkpoint "
                                                    f"({src_name}), {tuple(current.shape)} here"})
            continue
        state[name] = np.asarray(arr, dtype=current.dtype)
        copied.append(name if src_name == name else f"{name} <- {src_name}")
    unused = sorted(src for target, (src, _arr) in incoming.items() if target not in state)
    model.load_state(state)
    return {"source": str(path), "copied": copied, "skipped": skipped, "unused": unused}


def freeze(cfg, model) -> list[str]:
    """Mark the parameters `model.freeze` matches as frozen (and their batchnorm layers, with freeze_batchnorm);
    returns the frozen names. A pattern that matches nothing is a ConfigError naming it and listing the names."""
    patterns = list(getattr(cfg.model, "freeze", []) or [])
    if not patterns:
        return []
    names = list(model.net.params())
    frozen: set[str] = set()
    for i, pattern in enumerate(patterns):
        matched = fnmatch.filter(names, pattern)
        if not matched:
            raise ConfigError(located(cfg, f"model.freeze.{i}: pattern {pattern!r} matches no parameter; the "
                                           f"parameters are: {', '.join(names)}"))
        frozen.update(matched)
    model.frozen = frozenset(frozen)
    if cfg.model.freeze_batchnorm:
        model.eval_layers = frozenset(
            i for i, layer in enumerate(model.net.layers)
            if "running_mean" in layer.buffers and layer.params
            and all(f"{i}.{layer.kind}.{p}" in frozen for p in layer.params))
    return [n for n in names if n in frozen]
