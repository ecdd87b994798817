"""The figure of a classifier's confusion matrix (computed by `mlcli.models.metrics.confusion_matrix`, rows the
true class, columns the predicted one).

    confusion_figure(cm, class_names, title)             # counts and row-normalized, side by side
"""

from __future__ import annotations

import numpy as np

from mlcli.insight.figures import figure

CONFUSION_SIZE = (11.0, 5.0)
ANNOTATE_UP_TO = 20  # classes; beyond, the cells are too small for numbers


def confusion_figure(cm: np.ndarray, class_names: list[str], title: str = "confusion matrix"):
    """Two heat maps: counts, and each row divided by its class's support (what fraction of class i went where)."""
    fig = figure(*CONFUSION_SIZE)
    axes = fig.subplots(1, 2)
    counts = np.asarray(cm, dtype=np.int64)
    support = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
    n = len(class_names)
    size = 8 if n <= 10 else max(4, 8 - (n - 10) // 3)
    for ax, data, name, fmt in ((axes[0], counts, "counts", "d"), (axes[1], normalized, "row-normalized", ".2f")):
        image = ax.imshow(data, cmap="Blues", vmin=0, vmax=1 if fmt != "d" else max(int(data.max()), 1))
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ticks = np.arange(n)
        ax.set_xticks(ticks, labels=class_names, rotation=90 if n > 6 else 0, fontsize=size)
        ax.set_yticks(ticks, labels=class_names, fontsize=size)
        if n <= ANNOTATE_UP_TO:
            threshold = data.max() / 2 if data.max() > 0 else 1
            for i in range(n):
                for j in range(n):
                    if counts[i, j] == 0:  # blank cells make the mistakes stand out
                        continue
                    ax.text(j, i, format(data[i, j], fmt), ha="center", va="center", fontsize=size - 1,
                            color="white" if data[i, j] > threshold else "black")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.95, bottom=0.15, wspace=0.35)
    return fig
