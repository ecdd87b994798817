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

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from mlcli.nn import parallel


def training_threads(net) -> AbstractContextManager:
    """A context for training `net`: BLAS on one thread when the net convolves and mlcli's pool has threads."""
    if parallel.num_threads() == 1 or not any(layer.kind == "conv" for layer in net.layers):
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS and mlcli's batch-splitting pool on one thread while the block runs.

    How a GEMM or a batch is split over threads changes the order of floating-point sums, hence the last bits of
    the results. A sweep trial or a cv fold runs inside this context wherever it runs (this process, a process
    pool, a Dask worker), so that it gives the same result, bit for bit, on every scheduler; parallelism comes
    from running trials side by side instead.
    """
    import os

    from threadpoolctl import threadpool_limits

    previous = os.environ.get("MLCLI_NUM_THREADS")
    os.environ["MLCLI_NUM_THREADS"] = "1"
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if previous is None:
            os.environ.pop("MLCLI_NUM_THREADS", None)
        else:
            os.environ["MLCLI_NUM_THREADS"] = previous
