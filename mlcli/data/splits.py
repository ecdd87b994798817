"""Index splits of a dataset: a train/validation/test holdout and k folds for cross-validation.

Both work on the targets `y` alone and return index arrays, each sorted ascending (shuffling the training order
every epoch is the trainer's job). With `stratify=True` (classification) every class is split in the same
proportions; with `stratify=False` (regression) the samples are split as one group. All randomness comes from
the `rng` passed in.

The shared device: shuffle all indices with `rng`, then stably sort them by class, which gives each class's
samples as one consecutive, shuffled block of `perm`; a sample's rank inside its block decides its split.
"""

from __future__ import annotations

import numpy as np

from mlcli.errors import DataError


def _groups(y: np.ndarray, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """(N,) group index of each sample (its class, or 0 for all) and the (G,) group labels."""
    y = np.asarray(y)
    if not stratify:
        return np.zeros(y.shape[0], dtype=np.int64), np.zeros(1, dtype=np.int64)
    if y.ndim != 1 or y.dtype.kind == "f":
        raise ValueError(
            f"stratify needs 1-D class labels; got dtype {y.dtype}, shape {y.shape} (use stratify=False for "
            f"regression targets)"
        )
    labels, groups = np.unique(y, return_inverse=True)
    return groups.reshape(-1).astype(np.int64), labels


def _grouped_permutation(groups: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`perm`: a shuffle of 0..N-1 with each group's samples consecutive, and `rank`: each position's index in
    its group's block."""
    order = rng.permutation(groups.shape[0])
    perm = order[np.argsort(groups[order], kind="stable")]
    counts = np.bincount(groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(groups.shape[0]) - starts[groups[perm]]
    return perm, rank


def _split_sizes(counts: np.ndarray, test_fraction: float, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(G,) test and validation sizes per group: round(n_c * fraction), at least 1 for a non-zero fraction when
    n_c >= 3, and cut back (the larger split first) so that at least one sample of every group is left to train."""
    n_test = np.floor(counts * test_fraction + 0.5).astype(np.int64)
    n_val = np.floor(counts * val_fraction + 0.5).astype(np.int64)
    big = counts >= 3
    min_test = (big & (test_fraction > 0)).astype(np.int64)
    min_val = (big & (val_fraction > 0)).astype(np.int64)
    n_test = np.maximum(n_test, min_test)
    n_val = np.maximum(n_val, min_val)
    excess = np.maximum(n_test + n_val - (counts - 1), 0)
    cut_test = np.where(
        n_test >= n_val, np.minimum(excess, n_test - min_test), np.maximum(excess - (n_val - min_val), 0)
    )
    cut_val = excess - cut_test
    return n_test - cut_test, n_val - cut_val


def holdout_split(
    y: np.ndarray,
    *,
    test_fraction: float = 0.15,
    val_fraction: float = 0.15,
    rng: np.random.Generator,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the N samples of `y` into (train_idx, val_idx, test_idx), each sorted ascending.

    Fractions are of the WHOLE dataset. Stratified, each class c with n_c samples gives
    round(n_c * test_fraction) samples to test and round(n_c * val_fraction) to validation; a class with n_c >= 3
    gets at least one sample in every split whose fraction is > 0, and every class keeps at least one training
    sample. A fraction of 0 gives an empty split. y: (N,) labels, or (N, ...) targets with stratify=False.
    """
    for name, f in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0 <= f < 1:
            raise ValueError(f"{name} must be in [0, 1); got {f}")
    if test_fraction + val_fraction >= 1:
        raise ValueError(
            f"test_fraction + val_fraction must be < 1 to leave training data; got {test_fraction + val_fraction}"
        )
    groups, _ = _groups(y, stratify)
    perm, rank = _grouped_permutation(groups, rng)
    n_test, n_val = _split_sizes(np.bincount(groups), test_fraction, val_fraction)
    g = groups[perm]
    is_test = rank < n_test[g]
    is_val = ~is_test & (rank < n_test[g] + n_val[g])
    is_train = ~(is_test | is_val)
    return np.sort(perm[is_train]), np.sort(perm[is_val]), np.sort(perm[is_test])


def kfold_indices(
    y: np.ndarray, *, k: int, rng: np.random.Generator, stratify: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train_idx, val_idx) pairs, each sorted ascending; every sample is in exactly one val fold.

    Stratified, each class's samples are shuffled and dealt round-robin to folds 0, 1, ..., k-1, the deal
    continuing where the previous class stopped, so every fold holds floor or ceil(n_c / k) of each class and
    fold sizes differ by at most one. Without stratification the shuffled samples are dealt the same way.
    Raises ValueError for k < 2 and DataError when a class (or, unstratified, the dataset) has fewer than k
    samples.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2 folds; got {k}")
    groups, labels = _groups(y, stratify)
    counts = np.bincount(groups, minlength=labels.shape[0])
    if groups.shape[0] < k:
        raise DataError(f"{groups.shape[0]} samples cannot fill k={k} folds; lower k")
    small = np.flatnonzero(counts < k)
    if small.size:
        c = int(small[0])
        raise DataError(
            f"class {labels[c].item()!r} has {counts[c]} samples, fewer than k={k} folds; lower k or drop the class"
        )
    perm, _ = _grouped_permutation(groups, rng)
    fold = np.arange(perm.shape[0]) % k  # fold of perm[i]: the deal continues across class blocks
    return [(np.sort(perm[fold != f]), np.sort(perm[fold == f])) for f in range(k)]
