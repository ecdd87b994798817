"""What a network's first layer learned, drawn as images: a linear classifier's class templates, an MLP's
first-layer units, a CNN's first-layer filters.

    first_weights(net, "linear")          # (index, W) of the first Linear layer (W: (units, D)), or None
    first_weights(net, "conv")            # of the first Conv2d (W: (F, C, KH, KW))
    weights_figure(W, image_shape, titles, title)      # -> Figure; weights_size(n_images) its size in inches

A row of a linear W (units, D) is an image when the input is one: `image_shape` (C, H, W) with C*H*W = D (the
caller knows it: the sample shape of image data, or the image a flat dataset holds, digits' 64 features as 1x8x8);
otherwise W is drawn as one heat map (units x features). A conv filter (C, KH, KW) is an image of its C = 3
channels as RGB, or of their mean. Single-channel images use a diverging map centred on 0 (red positive, blue
negative), each divided by its own largest |value|; RGB filters are each scaled to [0, 1]. At most MAX_IMAGES are
drawn (the first ones), tiled into one mosaic.
"""

from __future__ import annotations

import math

import numpy as np

from mlcli.insight.figures import figure

MAX_IMAGES = 64
CELL = 1.2  # inches per image
HEATMAP_SIZE = (8.0, 5.0)


def first_weights(net, kind: str) -> tuple[int, np.ndarray] | None:
    """(layer index, W) of the first layer of `kind` ("linear" or "conv") in a Sequential, or None."""
    for i, layer in enumerate(getattr(net, "layers", [])):
        if layer.kind == kind and "W" in layer.params:
            return i, layer.params["W"]
    return None


def _grid(n: int) -> tuple[int, int]:
    cols = n if n <= 5 else 5 if n <= 10 else 8
    return math.ceil(n / cols), cols


def weights_size(n_images: int) -> tuple[float, float]:
    """Figure size (inches) of a grid of `n_images` (capped at MAX_IMAGES)."""
    rows, cols = _grid(min(n_images, MAX_IMAGES))
    return cols * CELL, rows * CELL + 0.5


def as_images(W: np.ndarray, image_shape: tuple[int, int, int] | None) -> np.ndarray | None:
    """W as images (n, H, W) or (n, H, W, 3), or None when they are not images."""
    W = np.asarray(W, dtype=np.float64)
    if W.ndim == 4:  # conv (F, C, KH, KW)
        chw = W
    elif image_shape is not None and math.prod(image_shape) == W.shape[1]:
        chw = W.reshape(len(W), *image_shape)
    else:
        return None
    if chw.shape[1] == 3:
        return chw.transpose(0, 2, 3, 1)
    return chw.mean(axis=1)


def mosaic(images: np.ndarray, cols: int) -> np.ndarray:
    """Tile images (n, h, w[, 3]) row by row into one array with a 1-pixel gap (NaN, or white for RGB); each
    single-channel image is divided by its largest |value| (to [-1, 1]), each RGB one scaled to [0, 1]."""
    n, h, w = images.shape[:3]
    rows = math.ceil(n / cols)
    rgb = images.ndim == 4
    tiles = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, *((3,) if rgb else ())), 1.0 if rgb else np.nan)
    for k, image in enumerate(images):
        if rgb:
            low, high = image.min(), image.max()
            image = (image - low) / (high - low) if high > low else np.zeros_like(image)
        else:
            image = image / (float(np.abs(image).max()) or 1.0)
        r, c = divmod(k, cols)
        tiles[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = image
    return tiles


def weights_figure(W: np.ndarray, image_shape: tuple[int, int, int] | None, titles: list[str], title: str):
    """The rows of W (or its filters) as a grid of images, or W as a heat map when they are not images. One
    mosaic in one axes (64 subplots would cost seconds); images are titled when there are at most 20."""
    images = as_images(W, image_shape)
    if images is None:
        return _heatmap(np.asarray(W, dtype=np.float64), titles, title)
    shown = images[:MAX_IMAGES]
    fig = figure(*weights_size(len(shown)))
    cols = _grid(len(shown))[1]
    top = 1 - 0.5 / fig.get_figheight()
    ax = fig.add_axes((0.01, 0.01, 0.98, top - 0.01))
    cmap = _colormap()
    ax.imshow(mosaic(shown, cols), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest", aspect="auto")
    h, w = shown.shape[1:3]
    if len(shown) <= 20:
        for k, name in enumerate(titles[:len(shown)]):
            r, c = divmod(k, cols)
            ax.text(c * (w + 1) + w / 2 - 0.5, r * (h + 1) - 0.5, name, ha="center", va="bottom", fontsize=7)
    ax.set_axis_off()
    more = f" (first {len(shown)} of {len(images)})" if len(images) > len(shown) else ""
    fig.suptitle(title + more + ("" if len(shown) <= 20 else ", row by row"), fontsize=9)
    return fig


def _colormap():
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(bad="white")


def _heatmap(W: np.ndarray, titles: list[str], title: str):
    fig = figure(*HEATMAP_SIZE)
    ax = fig.subplots()
    W = W.reshape(len(W), -1)[:MAX_IMAGES]
    scale = float(np.abs(W).max()) or 1.0
    image = ax.imshow(W, cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax)
    if len(W) <= 20:
        ax.set_yticks(np.arange(len(W)), labels=titles[:len(W)], fontsize=7)
    ax.set_xlabel("input feature")
    fig.suptitle(title, fontsize=9)
    return fig
