"""Benchmark: mlcli's KNNClassifier.predict beside scikit-learn's KNeighborsClassifier(algorithm="brute").

k=5, 20,000 training rows of 3,072 float32 features (CIFAR-10 sized), 2,000 queries, 10 classes drawn as
Gaussian clusters so that the neighbours mean something. Prints each predictor's seconds (best of `--repeat`),
its peak memory during predict (tracemalloc, which sees NumPy's allocations), and the ratios, then asserts:

- identical predictions wherever scikit-learn's vote has a single winner; where the vote is tied, scikit-learn
  takes the smallest label while mlcli takes the smallest summed distance first, so there mlcli's prediction is
  checked against that rule applied to scikit-learn's own neighbour lists;
- mlcli's peak memory within `max_memory_mb`.

Run: `python benchmarks/knn.py [--train 20000] [--queries 2000] [--features 3072] [--memory-mb 512]`.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np

from mlcli.models.knn import KNNClassifier


def make_data(n_train: int, n_queries: int, d: int, n_classes: int, seed: int = 0):
    """Gaussian clusters: X = centre[y] + noise, float32; returns X_train, y_train, X_query."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, d), dtype=np.float32) * np.float32(0.1)
    y = rng.integers(0, n_classes, n_train + n_queries)
    X = rng.standard_normal((n_train + n_queries, d), dtype=np.float32)
    X += centres[y]
    return X[:n_train], y[:n_train], X[n_train:]


def timed(fn, repeat: int):
    """Best wall time of `repeat` calls, the last result, and the peak traced memory of one more call (bytes)."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, out, peak


def rule_from_neighbours(dist: np.ndarray, idx: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """mlcli's uniform vote with its tie rule (smallest summed distance, then label) on given neighbours."""
    labels = y[idx]  # (N, k)
    onehot = labels[:, :, None] == np.arange(n_classes)  # (N, k, C)
    votes = onehot.sum(axis=1)
    dsum = (onehot * dist[:, :, None]).sum(axis=1)
    tied = votes == votes.max(axis=1, keepdims=True)
    return np.argmin(np.where(tied, dsum, np.inf), axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--features", type=int, default=3_072)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--memory-mb", type=float, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    env = {name: os.environ.get(name, "unset") for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(f"knn: k={args.k}, train {args.train}x{args.features} float32, {args.queries} queries, "
          f"max_memory_mb={args.memory_mb:g}; " + ", ".join(f"{k}={v}" for k, v in env.items()))

    X, y, Q = make_data(args.train, args.queries, args.features, args.classes)
    ours = KNNClassifier(k=args.k, max_memory_mb=args.memory_mb).fit(X, y, n_classes=args.classes)
    t_ours, pred_ours, peak_ours = timed(lambda: ours.predict(Q), args.repeat)
    print(f"mlcli   predict: {t_ours:7.3f} s   peak {peak_ours / 2**20:7.1f} MiB")
    assert peak_ours <= args.memory_mb * 2**20, f"mlcli peak {peak_ours / 2**20:.1f} MiB exceeds the budget"

    try:
        from sklearn.neighbors import KNeighborsClassifier
    except ImportError:
        print("scikit-learn not installed: no comparison")
        return
    sk = KNeighborsClassifier(n_neighbors=args.k, algorithm="brute").fit(X, y)
    t_sk, pred_sk, peak_sk = timed(lambda: sk.predict(Q), args.repeat)
    print(f"sklearn predict: {t_sk:7.3f} s   peak {peak_sk / 2**20:7.1f} MiB")

    dist, idx = sk.kneighbors(Q)
    votes = (y[idx][:, :, None] == np.arange(args.classes)).sum(axis=1)
    tied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert np.array_equal(pred_ours[~tied], pred_sk[~tied]), "predictions differ on untied votes"
    assert np.array_equal(pred_ours[tied], rule_from_neighbours(dist, idx, y, args.classes)[tied]), \
        "predictions differ from the tie rule on tied votes"
    print(f"predictions identical: {int((~tied).sum())} untied rows equal scikit-learn's, {int(tied.sum())} "
          f"tied rows follow the documented tie rule")
    print(f"ratio mlcli/sklearn: time {t_ours / t_sk:.2f}x (target <= 0.60x), peak memory "
          f"{peak_ours / max(peak_sk, 1):.1f}x (scikit-learn's Cython buffers are invisible to tracemalloc)")


if __name__ == "__main__":
    main()
