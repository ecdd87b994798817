"""Per-layer summary of a network, without training: output shape, parameters, connections, receptive field.

    rows, totals = summarize(net, input_shape=(3, 32, 32))

- parameters: learned scalars of the layer (weights + biases, batchnorm gamma/beta, PReLU slopes).
- connections: multiply-adds of one forward pass for one sample: a conv has H'*W'*C_out*(C_in*KH*KW), a linear
  layer in*out; other layers 0 (their element-wise work is not counted as connections).
- receptive field: the side of the input window one output unit sees, r_out = r_in + (k - 1) * j_in,
  j_out = j_in * stride (j is the distance in input pixels between neighbouring units); after a flatten or a
  linear layer every unit sees the whole input ("all").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LayerRow:
    index: int
    name: str
    detail: str
    output_shape: tuple[int, ...]
    params: int
    connections: int
    receptive_field: str


def _kernel_stride(layer) -> tuple[int, int] | None:
    if layer.kind == "conv":
        return int(layer.kernel_size[0]), int(layer.stride)
    if layer.kind in ("maxpool", "avgpool"):
        return int(layer.kernel_size), int(layer.stride)
    return None


def _detail(layer) -> str:
    """A compact description: `16@3x3 s1 p1` for a conv, `2x2 s2` for a pool, `256->10` for a linear layer."""
    if layer.kind == "conv":
        kh, kw = layer.kernel_size
        return f"{layer.out_channels}@{kh}x{kw} s{layer.stride} p{layer.padding}"
    if layer.kind in ("maxpool", "avgpool"):
        return f"{layer.kernel_size}x{layer.kernel_size} s{layer.stride}"
    if layer.kind == "linear":
        out_f, in_f = layer.params["W"].shape
        return f"{in_f}->{out_f}"
    if layer.kind == "dropout":
        return f"p={layer.p}"
    return ""


def summarize(net, input_shape: tuple[int, ...]) -> tuple[list[LayerRow], dict]:
    """Walk the layers with one sample's shape; return the rows and the totals."""
    shape = tuple(input_shape)
    rf, jump, full = 1, 1, len(shape) != 3
    rows = []
    for i, layer in enumerate(net.layers):
        if layer.kind == "heads":  # a multitask model's heads: a row per layer of each head, named by the head
            for head, sub in layer.heads.items():
                head_rows, _ = summarize(sub, shape)
                rows += [LayerRow(i, f"{head}: {r.name}", r.detail, r.output_shape, r.params, r.connections, "all")
                         for r in head_rows]
            shape = tuple(layer.output_shape(shape))
            continue
        out = tuple(layer.output_shape(shape))
        params = sum(int(p.size) for p in layer.params.values())
        if layer.kind == "conv":
            c_out, h, w = out
            kh, kw = layer.kernel_size
            connections = h * w * c_out * shape[0] * kh * kw
        elif layer.kind == "linear":
            connections = int(layer.params["W"].size)
        else:
            connections = 0
        ks = _kernel_stride(layer)
        if ks is not None and not full:
            rf += (ks[0] - 1) * jump
            jump *= ks[1]
        if layer.kind in ("flatten", "linear"):
            full = True
        rows.append(LayerRow(i, layer.kind, _detail(layer), out, params, connections,
                             "all" if full else f"{rf}x{rf}"))
        shape = out
    totals = {"params": sum(r.params for r in rows), "connections": sum(r.connections for r in rows),
              "output_shape": shape}
    return rows, totals
