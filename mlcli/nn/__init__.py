"""The NumPy core: layers with explicit forward and backward passes, losses, initializers, networks.

Conventions, stated once here:
- A batch is one array with the sample on axis 0: tabular data is `(N, D)`, images are NCHW `(N, C, H, W)`.
- Linear weights are `(out, in)`, conv weights `(C_out, C_in, KH, KW)`, as in PyTorch.
- Compute dtype is float32 unless the config asks for float64; gradient checks always use float64.
- Every layer follows `mlcli.nn.base.Layer`: `forward(x, train)`, `backward(dy)`, `params`, `grads`, `buffers`.
- A `Sequential` names each array `"<index>.<kind>.<name>"` (e.g. `"0.linear.W"`); optimizer state, checkpoints
  and gradient-check reports all use these names.

This package imports only numpy.
"""
