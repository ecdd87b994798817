"""Draw a run's plots into PNG files: `mlcli.plot` and `mlcli plot`.

    plot("runs/mlp-20261201-120000")                      # -> [.../plots/curves.png, .../plots/lr.png, ...]
    plot(["runs/a", "runs/b"], out="cmp", what="curves")  # overlaid, in cmp/curves.png
    plot("runs/sweep-20261201-120000", what=["curves", "lr"])   # a sweep's trials (or a cv directory's folds)

Kinds (`what`, a list or a comma string; see `mlcli.insight` for each figure):
- `curves`: train/val loss and the task metric per epoch, best epoch marked, learning rate on a second axis;
- `lr`: the learning rate per epoch;
- `confusion`: the best checkpoint's confusion matrix on `split` (counts and row-normalized), classifiers only;
- `weights`: the first Linear layer's rows as images (a softmax model's class templates, an MLP's units);
- `filters`: the first convolution's filters;
- `diagnostics`: the run's diagnostics.jsonl (`train.diagnostics: true`).

Files have stable names, `<kind>.png`, in `out` (default: `RUN/plots/` for one run, cv or sweep directory, and
`plots/` in the current directory for several). By default one run gets every kind that applies to it; several
runs (or a group's) get `curves` and `lr` overlaid, and a per-run kind asked for explicitly is drawn for each run
as `<kind>-<run>.png`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mlcli.errors import ConfigError
from mlcli.runs.atomic import atomic_write_bytes
from mlcli.runs.index import group_runs, is_run_dir, read_records
from mlcli.runs.rundir import checkpoint_path, read_summary

WHAT = ("curves", "lr", "confusion", "weights", "filters", "diagnostics")
OVERLAID = ("curves", "lr")
SPLITS = ("test", "val", "train")


@dataclass
class RunView:
    """One run directory, read lazily: its records and summary, its best checkpoint, its evaluations."""

    path: Path
    label: str
    _evaluations: dict = field(default_factory=dict, repr=False)

    @cached_property
    def records(self) -> list[dict]:
        return read_records(self.path)

    @cached_property
    def summary(self) -> dict:
        return read_summary(self.path) or {}

    @property
    def checkpoint(self) -> Path:
        """The best checkpoint; ConfigError when the run has none (killed before its first epoch)."""
        path = checkpoint_path(self.path)
        if not path.is_file():
            raise ConfigError(f"{self.path}: no checkpoint ({path} is missing); the run ended before its first epoch")
        return path

    @cached_property
    def loaded(self):
        from mlcli.runs.snapshot import load_model

        return load_model(self.checkpoint)

    @property
    def series(self):
        from mlcli.insight.curves import Series

        best = self.summary.get("best_epoch")
        return Series(self.label, self.records, best if isinstance(best, int) else None)

    @property
    def is_classifier(self) -> bool:
        task = self.summary.get("task")
        return task == "classification" if task else self.loaded.meta.get("task") == "classification"

    @property
    def has_checkpoint(self) -> bool:
        return checkpoint_path(self.path).is_file()

    def first_layer(self, kind: str):
        from mlcli.insight.weights import first_weights

        return first_weights(getattr(self.loaded.model, "net", None), kind)

    def applicable(self) -> list[str]:
        """The kinds a default `plot` draws for this run."""
        kinds = ["curves", "lr"]
        if self.has_checkpoint:
            if self.is_classifier:
                kinds.append("confusion")
            if self.first_layer("conv") is not None:
                kinds.append("filters")
            elif self.first_layer("linear") is not None:
                kinds.append("weights")
        if (self.path / "diagnostics.jsonl").is_file():
            kinds.append("diagnostics")
        return kinds

    def evaluation(self, split: str = "test") -> dict:
        """`mlcli.evaluate` of the best checkpoint on `split` with the per-class report and confusion matrix."""
        if split not in self._evaluations:
            from mlcli.workflows.evaluate import evaluate_checkpoint

            if not self.is_classifier:
                raise ConfigError(f"confusion: {self.path} holds a {self.summary.get('task') or 'regression'} "
                                  f"model; a confusion matrix needs a classifier")
            self._evaluations[split] = evaluate_checkpoint(self.checkpoint, split=split, per_class=True)
        return self._evaluations[split]


def image_shape(loaded) -> tuple[int, int, int] | None:
    """The image a sample is, (C, H, W): its own shape, or the image a flat dataset's row holds (digits: 1x8x8)."""
    from mlcli.config.data_schema import DATASET_FACTS

    shape = tuple(int(d) for d in loaded.meta["input_shape"])
    if len(shape) == 3:
        return shape
    facts = DATASET_FACTS.get(loaded.config.data.type)
    return tuple(facts.image_shape) if facts is not None and facts.image_shape else None


def figure_of(view: RunView, kind: str, split: str = "test"):
    """The matplotlib Figure of one per-run kind (ConfigError when it does not apply to the run)."""
    if kind in OVERLAID:
        return overlay_figure([view], kind)
    if kind == "confusion":
        from mlcli.insight.confusion import confusion_figure

        result = view.evaluation(split)
        confusion = result["confusion"]
        return confusion_figure(confusion["matrix"], confusion["labels"],
                                f"{view.label}: confusion matrix on the {split} split ({result['n']} samples)")
    if kind == "diagnostics":
        from mlcli.insight.diagnostics_plot import diagnostics_figure
        from mlcli.training.diagnostics import read_diagnostics

        records = read_diagnostics(view.path)
        if not records:
            raise ConfigError(f"diagnostics: {view.path} has no diagnostics.jsonl; train with --diagnostics "
                              f"(or train.diagnostics: true)")
        return diagnostics_figure(records, f"{view.label}: diagnostics")
    return _weights_figure(view, kind)


def _weights_figure(view: RunView, kind: str):
    from mlcli.insight.weights import weights_figure

    model_type = view.loaded.config.model.type
    if getattr(view.loaded.model, "net", None) is None:
        raise ConfigError(f"{kind}: {view.path} holds a {model_type} model, which has no network layers to draw")
    found = view.first_layer("conv" if kind == "filters" else "linear")
    conv = view.first_layer("conv")
    if kind == "filters" and found is None:
        raise ConfigError(f"filters: {view.path} holds a {model_type} model, which has no convolution; "
                          f"use --what weights")
    if kind == "weights" and (found is None or (conv is not None and conv[0] < found[0])):
        hint = "use --what filters" if conv is not None else "it has no weights to draw"
        raise ConfigError(f"weights: {view.path} holds a {model_type} model whose first layer is not linear; {hint}")
    index, W = found
    if kind == "filters":
        titles, what = [f"filter {i}" for i in range(len(W))], f"first convolution's filters ({index}.conv.W)"
    elif model_type == "softmax" and len(W) > 1:
        titles, what = list(view.loaded.meta.get("class_names") or range(len(W))), "class templates"
        titles = [str(t) for t in titles]
    else:
        titles, what = [f"unit {i}" for i in range(len(W))], f"first layer's units ({index}.linear.W)"
    return weights_figure(W, image_shape(view.loaded), titles, f"{view.label}: {what}")


def overlay_figure(views: list[RunView], kind: str, title: str | None = None):
    from mlcli.insight.curves import curves_figure, lr_figure

    series = [v.series for v in views]
    return (curves_figure if kind == "curves" else lr_figure)(series, title)


def png_of(fig) -> bytes:
    from mlcli.insight.figures import to_png

    return to_png(fig)


def parse_what(what) -> list[str] | None:
    """A list of kinds from a list or a comma string (None: the defaults); ConfigError naming an unknown kind."""
    if what is None:
        return None
    items = what.split(",") if isinstance(what, str) else list(what)
    kinds = [str(k).strip() for k in items if str(k).strip()]
    unknown = [k for k in kinds if k not in WHAT]
    if unknown:
        raise ConfigError(f"--what: unknown plot {unknown[0]!r}; choose from {', '.join(WHAT)}")
    if not kinds:
        raise ConfigError(f"--what: name at least one plot of {', '.join(WHAT)}")
    return list(dict.fromkeys(kinds))


def expand(paths: list[Path]) -> list[RunView]:
    """The runs the arguments name: a run directory, or the folds of a cv directory / the trials of a sweep."""
    views: list[RunView] = []
    for path in paths:
        if is_run_dir(path):
            views.append(RunView(path, path.name))
            continue
        grouped = group_runs(path) if path.is_dir() else None
        if grouped is None:
            raise ConfigError(f"{path}: not a run, cv or sweep directory (a run directory holds config.yaml and "
                              f"metrics.jsonl)")
        if not grouped:
            raise ConfigError(f"{path}: this cv or sweep directory holds no finished run yet")
        for info in grouped:
            label = str(info.path.relative_to(path)).removeprefix("trials/")
            views.append(RunView(info.path, f"{path.name}/{label}" if len(paths) > 1 else label))
    return views


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "run"


def plot(runs, out: str | Path | None = None, what=None, *, split: str = "test") -> list[Path]:
    """Write the PNG plots of `runs` (one path or several: run, cv or sweep directories) and return their paths.

    out: the folder (default `RUN/plots/` for one argument, `plots/` for several); what: kinds to draw (default:
    every kind that applies, or `curves` and `lr` for several runs); split: the confusion matrix's split.
    Raises ConfigError (a path that is no run, a kind that does not apply, matplotlib missing) and
    CheckpointError (an unreadable checkpoint).
    """
    paths = [Path(runs)] if isinstance(runs, (str, Path)) else [Path(p) for p in runs]
    if not paths:
        raise ConfigError("plot needs at least one run directory")
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    kinds = parse_what(what)
    views = expand(paths)
    out_dir = Path(out) if out is not None else (paths[0] / "plots" if len(paths) == 1 else Path("plots"))
    from mlcli.insight.figures import matplotlib_module

    matplotlib_module()  # the missing-matplotlib error before any work
    written: list[Path] = []

    def write(name: str, fig) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / name
        atomic_write_bytes(target, png_of(fig))
        written.append(target)

    if len(views) == 1:
        view = views[0]
        for kind in kinds or view.applicable():
            write(f"{kind}.png", figure_of(view, kind, split))
        return written
    title = paths[0].name if len(paths) == 1 else None
    for kind in kinds or list(OVERLAID):
        if kind in OVERLAID:
            write(f"{kind}.png", overlay_figure(views, kind, title))
        else:
            for view in views:
                write(f"{kind}-{_slug(view.label)}.png", figure_of(view, kind, split))
    return written
