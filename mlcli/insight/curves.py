"""Learning curves and the learning-rate schedule of one run or several overlaid (a sweep's trials, cv folds).

    curves_figure([Series("mlp", records, best_epoch=7)])     # -> Figure, CURVES_SIZE inches
    lr_figure(series_list)                                    # -> Figure, LR_SIZE inches

Left panel: train (dashed) and val (solid) loss per epoch, the learning rate on a second axis; right panel: the
task's metric (accuracy, r2, reconstruction_mse). The best epoch is a star on the val curve (and a dotted line for
a single run). Records are metrics.jsonl lines; a missing, null or non-finite value is a gap, never an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlcli.insight.figures import figure, finite, note

CURVES_SIZE = (11.0, 4.0)
LR_SIZE = (7.0, 3.5)
TASK_METRICS = ("accuracy", "r2", "reconstruction_mse", "mse")
MAX_LEGEND = 12


@dataclass
class Series:
    """One run's epochs: `label` for the legend, its metrics records, the epoch its best checkpoint holds."""

    label: str
    records: list[dict]
    best_epoch: int | None = None

    def epochs(self) -> list[float]:
        return finite(r.get("epoch") for r in self.records)

    def values(self, key: str) -> list[float]:
        return finite(r.get(key) for r in self.records)

    def has(self, key: str) -> bool:
        return any(isinstance(r.get(key), (int, float)) for r in self.records)


def task_metric(series: list[Series]) -> str | None:
    """The first of TASK_METRICS any run reports (as train_ or val_), else the first head's of a multitask run
    (`digit_accuracy` from `val_digit_accuracy`), or None."""
    found = next((m for m in TASK_METRICS if any(s.has(f"val_{m}") or s.has(f"train_{m}") for s in series)), None)
    if found is not None:
        return found
    keys = [key for s in series for r in s.records[:1] for key in r]
    for m in TASK_METRICS:
        for split in ("val_", "train_"):
            head = next((k for k in keys if k.startswith(split) and k.endswith(f"_{m}")), None)
            if head is not None:
                return head.removeprefix(split)
    return None


def _style(series: list[Series], i: int) -> dict:
    marker = "o" if max((len(s.records) for s in series), default=0) <= 25 else None
    return {"color": f"C{i % 10}", "marker": marker, "markersize": 3}


def _draw(ax, series: list[Series], key: str, *, single: bool) -> bool:
    """train_key dashed and val_key solid for every run; the best epoch starred. True when anything was drawn."""
    drawn = False
    for i, s in enumerate(series):
        style = _style(series, i)
        x = s.epochs()
        for split, line in (("train", "--"), ("val", "-")):
            if not s.has(f"{split}_{key}"):
                continue
            if single:
                style = {**style, "color": "C0" if split == "train" else "C1"}
            ax.plot(x, s.values(f"{split}_{key}"), linestyle=line, label=f"{split}" if single else
                    (s.label if split == "val" or not s.has(f"val_{key}") else None), **style)
            drawn = True
        best = next((r for r in s.records if r.get("epoch") == s.best_epoch), {})
        value = finite([best.get(f"val_{key}" if s.has(f"val_{key}") else f"train_{key}")])[0]
        if not math.isnan(value):
            ax.plot([s.best_epoch], [value], marker="*", markersize=12, linestyle="none",
                    color="C3" if single else style["color"], label="best epoch" if single else None, zorder=5)
        if single and s.best_epoch is not None:
            ax.axvline(s.best_epoch, color="C3", linestyle=":", linewidth=1)
    return drawn


def curves_figure(series: list[Series], title: str | None = None):
    """Loss (with the learning rate on a second axis) and the task metric per epoch, for every run in `series`."""
    fig = figure(*CURVES_SIZE)
    loss_ax, metric_ax = fig.subplots(1, 2)
    single = len(series) == 1
    if not _draw(loss_ax, series, "loss", single=single):
        note(loss_ax, "no epochs recorded")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    if any(s.has("lr") for s in series):
        lr_ax = loss_ax.twinx()
        for i, s in enumerate(series):
            lr_ax.plot(s.epochs(), s.values("lr"), color="0.5" if single else f"C{i % 10}", linestyle=":",
                       linewidth=1, label="lr" if single else None)
        lr_ax.set_ylabel("learning rate", color="0.4")
        lr_ax.tick_params(axis="y", colors="0.4")
        if single:
            lines = loss_ax.get_legend_handles_labels()
            extra = lr_ax.get_legend_handles_labels()
            loss_ax.legend(lines[0] + extra[0], lines[1] + extra[1], fontsize=8)
    elif single and loss_ax.lines:
        loss_ax.legend(fontsize=8)
    metric = task_metric(series)
    if metric is None or not _draw(metric_ax, series, metric, single=single):
        note(metric_ax, "no task metric recorded")
    else:
        metric_ax.set_xlabel("epoch")
        metric_ax.set_ylabel(metric)
        if single:
            metric_ax.legend(fontsize=8)
    if not single:
        handles, labels = metric_ax.get_legend_handles_labels() if metric_ax.lines else \
            loss_ax.get_legend_handles_labels()
        if labels:
            shown = min(len(labels), MAX_LEGEND)
            more = f" (first {shown} of {len(labels)})" if len(labels) > shown else ""
            fig.legend(handles[:shown], labels[:shown], loc="center right", fontsize=7,
                       title=f"val solid, train dashed{more}", title_fontsize=7)
            fig.subplots_adjust(left=0.06, right=0.8, wspace=0.5)
    else:
        fig.subplots_adjust(left=0.06, right=0.97, wspace=0.45)
    fig.suptitle(title or (series[0].label if single else f"{len(series)} runs"), fontsize=10)
    return fig


def lr_figure(series: list[Series], title: str | None = None):
    """The learning rate per epoch of every run (log scale when it spans more than a factor of 10)."""
    fig = figure(*LR_SIZE)
    ax = fig.subplots()
    values = [v for s in series for v in s.values("lr") if not math.isnan(v)]
    if not values:
        note(ax, "no learning rate recorded (a model fitted in closed form)")
    else:
        for i, s in enumerate(series):
            ax.plot(s.epochs(), s.values("lr"), label=s.label, **_style(series, i))
        if min(values) > 0 and max(values) / min(values) > 10:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        if 1 < len(series) <= MAX_LEGEND:
            ax.legend(fontsize=7)
    fig.suptitle(title or ("learning rate" if len(series) == 1 else f"learning rate, {len(series)} runs"),
                 fontsize=10)
    fig.subplots_adjust(bottom=0.15)
    return fig
