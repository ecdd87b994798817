"""Who uses the CPU cores during training: OpenBLAS's threads or mlcli's batch-splitting pool.

OpenBLAS parallelizes one GEMM at a time and keeps its worker threads spinning for a while after each call, so
the memory-bound work between GEMMs (im2col, col2im, ReLU, pooling), which `mlcli.nn.parallel` splits over the
batch, finds the second core busy. A convolutional network has many such passes and many small per-sample
GEMMs; it trains faster with BLAS on one thread and mlcli's pool splitting every layer over the batch (measured
on 2 cores: 1.84x -> 1.18x PyTorch's epoch time on benchmarks/cnn.py). A dense network is a few large GEMMs,
which OpenBLAS's own threads parallelize best, so it keeps them.

threadpoolctl (a dependency) sets the BLAS thread count at run time, for the duration of training only.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from mlcli.nn import parallel


def training_threads(net) -> AbstractContextManager:
    """A context for training `net`: BLAS on one thread when the net convolves and mlcli's pool has threads."""
    if parallel.num_threads() == 1 or not any(layer.kind == "conv" for layer in net.layers):
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
