"""The figure of a run's diagnostics.jsonl (written by `mlcli.training.diagnostics.Diagnostics`).

    diagnostics_figure(records, title)      # -> Figure of DIAGNOSTICS_SIZE inches, four panels:

1. activation std by layer (the nonlinearities' outputs, in network order) for the first, middle and last
   recorded epoch: the course's picture of activations vanishing (small init) or holding (Xavier/tanh, He/ReLU);
2. the saturated (sigmoid, tanh) or dead (relu) fraction of every such layer per epoch;
3. the gradient norm of every weight array per epoch (the epoch's first step; log scale);
4. the update-to-weight ratio of every weight array per epoch (log scale), with cs231n's 1e-3 marked.
"""

from __future__ import annotations

import math

from mlcli.insight.figures import figure, finite, note

DIAGNOSTICS_SIZE = (12.0, 8.0)
NONLINEAR = ("relu", "leaky_relu", "prelu", "elu", "sigmoid", "tanh", "softplus")
MAX_LINES = 10


def _layers(records: list[dict]) -> list[str]:
    """Names of the nonlinearities' outputs (`2.tanh`), else of every recorded layer, in network order."""
    names = list((records[0].get("activations") or {}) if records else {})
    nonlinear = [n for n in names if n.split(".", 1)[-1] in NONLINEAR]
    return nonlinear or names


def _weights(records: list[dict]) -> list[str]:
    names = list((records[-1].get("params") or {}) if records else {})
    return [n for n in names if n.endswith(".W")] or names


def _series(records: list[dict], group: str, name: str, key: str) -> tuple[list[float], list[float]]:
    epochs = finite(r.get("epoch") for r in records)
    return epochs, finite(((r.get(group) or {}).get(name) or {}).get(key) for r in records)


def _log_ready(values: list[float]) -> list[float]:
    return [v if v > 0 else math.nan for v in values]


def diagnostics_figure(records: list[dict], title: str = "diagnostics"):
    fig = figure(*DIAGNOSTICS_SIZE)
    (std_ax, sat_ax), (grad_ax, ratio_ax) = fig.subplots(2, 2)
    layers = _layers(records)
    if not layers:
        for ax in (std_ax, sat_ax, grad_ax, ratio_ax):
            note(ax, "no diagnostics recorded (train with --diagnostics)")
        fig.suptitle(title, fontsize=10)
        return fig
    picks = sorted({0, len(records) // 2, len(records) - 1})
    for i in picks:
        record = records[i]
        stds = finite(((record.get("activations") or {}).get(n) or {}).get("std") for n in layers)
        std_ax.plot(range(1, len(layers) + 1), stds, marker="o", label=f"epoch {record.get('epoch')}")
    std_ax.set_xticks(range(1, len(layers) + 1), labels=layers, rotation=45 if len(layers) > 4 else 0,
                      fontsize=7, ha="right" if len(layers) > 4 else "center")
    std_ax.set_ylabel("activation std")
    std_ax.set_title("activation std by layer (probe batch)", fontsize=9)
    std_ax.legend(fontsize=7)

    drawn = False
    for name in layers[:MAX_LINES]:
        stats = (records[0].get("activations") or {}).get(name) or {}
        key = "saturated" if "saturated" in stats else "dead" if "dead" in stats else None
        if key is not None:
            sat_ax.plot(*_series(records, "activations", name, key), marker=".", label=f"{name} {key}")
            drawn = True
    if drawn:
        sat_ax.set_ylim(-0.02, 1.02)
        sat_ax.set_xlabel("epoch")
        sat_ax.set_ylabel("fraction of outputs")
        sat_ax.legend(fontsize=7)
    else:
        note(sat_ax, "no sigmoid, tanh or relu layer")
    sat_ax.set_title("saturated (|bound| < 0.01) / dead (relu = 0)", fontsize=9)

    weights = _weights(records)[:MAX_LINES]
    for ax, key, label in ((grad_ax, "grad_norm", "gradient norm"), (ratio_ax, "update_ratio", "update / weight")):
        drawn = False
        for name in weights:
            epochs, values = _series(records, "params", name, key)
            values = _log_ready(values)
            if any(not math.isnan(v) for v in values):
                ax.plot(epochs, values, marker=".", label=name)
                drawn = True
        if drawn:
            ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            if key == "update_ratio":
                ax.axhline(1e-3, color="0.4", linestyle=":", linewidth=1, label="1e-3")
            ax.legend(fontsize=7)
        else:
            note(ax, "no optimizer step recorded yet")
        ax.set_title(f"{label} (first step of each epoch)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(hspace=0.45, wspace=0.25, bottom=0.1)
    return fig
