"""Benchmark: an MLP trained through mlcli's own training code beside PyTorch (CPU) and scikit-learn.

The model: 3072-512-10 (Flatten - Linear - ReLU - Linear), softmax cross-entropy, SGD with momentum 0.9, lr 0.01,
batch 256, float32, 2 epochs over 20,000 synthetic CIFAR-sized samples (3x32x32, N(0, 1), 10 random labels).

- mlcli: a `Config` built in code (model mlp hidden [512], momentum optimizer, constant schedule), the model from
  `mlcli.workflows.build.setup` on a `PreparedData` of the samples with EMPTY val and test splits, `make_optimizer`,
  `make_schedule`, then `mlcli.training.trainer.fit`. Timed per epoch: the trainer's own `seconds` (shuffle, batches,
  running train loss/accuracy; no evaluation, as there is no val split) and the wall clock around each epoch.
- numpy: the reference the target is set against, a plain, well-vectorized NumPy loop of the same math with
  mlcli's initial weights and sample order (its loss equals mlcli's).
- torch: the same network as `torch.nn.Linear` layers holding a copy of mlcli's initial weights, the same sample
  order (mlcli's shuffle generator), `torch.optim.SGD(momentum=0.9)` (equal to mlcli's rule at constant lr),
  `CrossEntropyLoss`, and the same running loss/accuracy; `torch.set_num_threads(cpu count)`.
- scikit-learn: `MLPClassifier(hidden_layer_sizes=(512,), solver="sgd", momentum=0.9, nesterovs_momentum=False,
  batch_size=256, learning_rate_init=0.01, alpha=0, max_iter=1, warm_start=True)` on float32 input; one `fit`
  call is one epoch (its own init and shuffling; ConvergenceWarning ignored).

Runs alternate (mlcli, numpy, torch, sklearn, then again), each in a fresh subprocess, so that no run inherits
another's warm caches or thread pools. Printed per run: seconds of each epoch and the last epoch's loss; then the
median (and best) seconds per epoch of each framework over all its epochs, the ratios, whether the target holds
(mlcli at most 0.8x torch and 0.7x sklearn, on medians; issue 12), and the fraction of the machine's float32 GEMM
throughput each reaches: `(model FLOPs per epoch / seconds per epoch) / GEMM FLOP/s`, where the model FLOPs are
the matrix products of the forward pass (2*N*(3072*512 + 512*10)), of the weight gradients (the same), and of the
one input gradient that is needed (2*N*512*10: none for the first layer), and the GEMM FLOP/s is the best of
several 2048x2048x2048 float32 NumPy matmuls, measured after every round.

Run with the benchmark environment (torch 2.13 CPU + scikit-learn + mlcli):
    /tmp/venv-bench/bin/python benchmarks/mlp.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /tmp/venv-bench/bin/python benchmarks/mlp.py
A framework that is not importable is skipped. `--samples`, `--epochs`, `--rounds` shrink the work for a check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from mlcli.config.schema import Config
from mlcli.data.dataset import Dataset
from mlcli.data.pipeline import PreparedData
from mlcli.training.trainer import fit
from mlcli.workflows.build import make_optimizer, make_schedule, setup

IMAGE_SHAPE = (3, 32, 32)
N_FEATURES = 3 * 32 * 32
HIDDEN = 512
N_CLASSES = 10
BATCH = 256
LR = 0.01
MOMENTUM = 0.9
SEED = 0
TARGET_VS_TORCH = 0.8
TARGET_VS_SKLEARN = 0.7
FRAMEWORKS = ("mlcli", "numpy", "torch", "sklearn")


def synthetic_data(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """n float32 images (n, 3, 32, 32) ~ N(0, 1) and int64 labels (n,) in [0, 10)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *IMAGE_SHAPE), dtype=np.float32), rng.integers(0, N_CLASSES, n)


def model_flops_per_epoch(n: int) -> float:
    """Matrix-product FLOPs of one epoch: forward + weight gradients + the second layer's input gradient."""
    macs = N_FEATURES * HIDDEN + HIDDEN * N_CLASSES
    return 2.0 * n * (2 * macs + HIDDEN * N_CLASSES)


def gemm_flops(size: int = 2048, repeat: int = 5) -> float:
    """Best measured FLOP/s of a (size x size) @ (size x size) float32 NumPy matmul (after one warm-up)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best


def mlcli_config(epochs: int) -> Config:
    """The benchmark's run config: the MLP, momentum SGD at a constant lr, float32, no val/test split."""
    return Config.model_validate({
        "name": "bench-mlp",
        "seed": SEED,
        "data": {"type": "npz", "path": "in-memory.npz", "test_fraction": 0.0, "val_fraction": 0.0,
                 "standardize": False},
        "model": {"type": "mlp", "hidden": [HIDDEN], "activation": "relu"},
        "train": {"epochs": epochs, "batch_size": BATCH, "dtype": "float32",
                  "optimizer": {"type": "momentum", "lr": LR, "momentum": MOMENTUM},
                  "schedule": {"type": "constant"}},
    })


def mlcli_setup(samples: int, epochs: int):
    """Config, generators, prepared data (train = all samples, val/test empty) and the built mlcli model."""
    x, y = synthetic_data(samples)
    names = [str(c) for c in range(N_CLASSES)]
    train = Dataset(x=x, y=y, task="classification", class_names=names, source="synthetic:benchmark")
    empty = Dataset(x=x[:0], y=y[:0], task="classification", class_names=names, source="synthetic:benchmark")
    config = mlcli_config(epochs)
    gens, data, model = setup(config, data=PreparedData(train=train, val=empty, test=empty, standardizer=None))
    return config, gens, data, model


def worker_mlcli(samples: int, epochs: int) -> dict:
    config, gens, data, model = mlcli_setup(samples, epochs)
    optimizer, schedule = make_optimizer(config), make_schedule(config)
    times, walls, losses = [], [], []
    records = fit(model, optimizer, schedule, data, config.train, gens)
    for _ in range(epochs):
        t0 = time.perf_counter()
        record = next(records)
        walls.append(time.perf_counter() - t0)
        times.append(record["seconds"])
        losses.append(record["train_loss"])
    return {"times": times, "walls": walls, "losses": losses}


def worker_numpy(samples: int, epochs: int) -> dict:
    """The reference the target is set against: a plain, well-vectorized NumPy loop of the same math, with
    mlcli's initial weights and sample order, the update `v = mu * v - lr * g; w += v` written out directly.
    """
    _, gens, data, model = mlcli_setup(samples, epochs)
    x, y = data.train.x.reshape(samples, -1), data.train.y
    first, second = (layer for layer in model.net.layers if layer.kind == "linear")
    params = [first.params["W"], first.params["b"], second.params["W"], second.params["b"]]
    W1, b1, W2, b2 = params
    velocity = [np.zeros_like(w) for w in params]
    times, losses = [], []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = gens.shuffle.permutation(samples)
        total, correct = 0.0, 0
        for start in range(0, samples, BATCH):
            idx = order[start:start + BATCH]
            xb, yb, rows = x[idx], y[idx], np.arange(len(idx))
            h = xb @ W1.T
            h += b1
            np.maximum(h, 0, out=h)
            z = h @ W2.T
            z += b2
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            norm = p.sum(axis=1, keepdims=True)
            total += float(np.log(norm).sum() - z[rows, yb].sum())
            correct += int(np.count_nonzero(z.argmax(axis=1) == yb))
            p /= norm
            p[rows, yb] -= 1
            p /= len(idx)  # dL/dz: (B, 10)
            dh = p @ W2
            dh *= h > 0
            grads = (dh.T @ xb, dh.sum(axis=0), p.T @ h, p.sum(axis=0))
            for w, v, g in zip(params, velocity, grads, strict=True):
                v *= MOMENTUM
                v -= LR * g
                w += v
        times.append(time.perf_counter() - t0)
        losses.append(total / samples)
    return {"times": times, "walls": times, "losses": losses}


def worker_torch(samples: int, epochs: int) -> dict:
    import torch

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    _, gens, data, model = mlcli_setup(samples, epochs)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    first, second = (layer for layer in model.net.layers if layer.kind == "linear")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(N_FEATURES, HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN, N_CLASSES))
    with torch.no_grad():
        for mine, theirs in ((first, net[1]), (second, net[3])):
            theirs.weight.copy_(torch.from_numpy(mine.params["W"]))
            theirs.bias.copy_(torch.from_numpy(mine.params["b"]))
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    times, losses = [], []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.from_numpy(gens.shuffle.permutation(samples))
        total, correct = 0.0, 0
        for start in range(0, samples, BATCH):
            idx = order[start:start + BATCH]
            yb = y[idx]
            out = net(x[idx])
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((out.detach().argmax(1) == yb).sum())
        times.append(time.perf_counter() - t0)
        losses.append(total / samples)
    return {"times": times, "walls": times, "losses": losses,
            "detail": f"torch {torch.__version__}, {torch.get_num_threads()} threads"}


def worker_sklearn(samples: int, epochs: int) -> dict:
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = synthetic_data(samples)
    x = x.reshape(samples, -1)
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="sgd", momentum=MOMENTUM, nesterovs_momentum=False,
                        batch_size=BATCH, learning_rate_init=LR, alpha=0.0, max_iter=1, warm_start=True,
                        random_state=SEED)
    times, losses = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs):
            t0 = time.perf_counter()
            clf.fit(x, y)
            times.append(time.perf_counter() - t0)
            losses.append(float(clf.loss_))
    return {"times": times, "walls": times, "losses": losses,
            "detail": f"scikit-learn {sklearn.__version__}, weights {clf.coefs_[0].dtype}"}


WORKERS = {"mlcli": worker_mlcli, "numpy": worker_numpy, "torch": worker_torch, "sklearn": worker_sklearn}


def importable(framework: str) -> bool:
    module = {"mlcli": "mlcli", "numpy": "numpy", "torch": "torch", "sklearn": "sklearn"}[framework]
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], check=False, capture_output=True)
    return probe.returncode == 0


def run_worker(framework: str, samples: int, epochs: int) -> dict:
    """One framework's training in a fresh interpreter; returns its JSON report."""
    cmd = [sys.executable, __file__, "--worker", framework, "--samples", str(samples), "--epochs", str(epochs)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of one run per framework, alternating")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.samples, args.epochs)))
        return

    env = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    cpus = os.cpu_count()
    print("env: " + ", ".join(f"{k}={v}" for k, v in env.items()) + f"; cpus={cpus}; numpy {np.__version__}; "
          f"torch.set_num_threads({cpus})")
    frameworks = [fw for fw in FRAMEWORKS if importable(fw)]
    skipped = [fw for fw in FRAMEWORKS if fw not in frameworks]
    print(f"work: MLP {N_FEATURES}-{HIDDEN}-{N_CLASSES}, {args.samples} samples float32, batch {BATCH}, "
          f"{args.epochs} epochs per run, {args.rounds} rounds of {' '.join(frameworks)}"
          + (f" ({', '.join(skipped)} not importable)" if skipped else ""))
    print("timed: one epoch = shuffle + all batches (gather, forward, loss, backward, update) + running train "
          "loss (no evaluation: empty val split); mlcli: the trainer's `seconds` [wall clock around fit's epoch]; "
          "numpy = plain NumPy loop, the reference")
    results: dict[str, list[dict]] = {fw: [] for fw in frameworks}
    gemm = 0.0
    for r in range(args.rounds):
        for fw in frameworks:
            rep = run_worker(fw, args.samples, args.epochs)
            results[fw].append(rep)
            walls = " [" + " ".join(f"{t:.3f}" for t in rep["walls"]) + "]" if fw == "mlcli" else ""
            detail = f"  ({rep['detail']})" if "detail" in rep else ""
            print(f"round {r + 1} {fw:7s}: s/epoch " + " ".join(f"{t:.3f}" for t in rep["times"]) + walls
                  + f"  loss {rep['losses'][-1]:.4f}{detail}")
        gemm = max(gemm, gemm_flops())
    flops = model_flops_per_epoch(args.samples)
    epochs = {fw: [t for rep in results[fw] for t in rep["times"]] for fw in frameworks}
    med = {fw: statistics.median(times) for fw, times in epochs.items()}
    best = {fw: min(times) for fw, times in epochs.items()}
    print(f"GEMM 2048^3 float32 (numpy, best of {5 * args.rounds}): {gemm / 1e9:.1f} GFLOP/s; model: "
          f"{flops / 1e9:.1f} GFLOP per epoch")
    for fw in frameworks:
        print(f"{fw:7s}: median {med[fw]:.3f} s/epoch (best {best[fw]:.3f}), {args.samples / med[fw]:.0f} "
              f"samples/s, {flops / med[fw] / 1e9:.1f} GFLOP/s = {flops / med[fw] / gemm:.0%} of GEMM")
    verdicts = []
    for fw in ("torch", "sklearn"):
        for mine in ("mlcli", "numpy"):
            if fw not in med or mine not in med:
                continue
            ratio = med[mine] / med[fw]
            line = f"ratio {mine}/{fw}: {ratio:.2f}x median, {best[mine] / best[fw]:.2f}x best"
            if mine == "mlcli":
                limit = TARGET_VS_TORCH if fw == "torch" else TARGET_VS_SKLEARN
                verdicts.append(ratio <= limit)
                line += f" (target <= {limit:.1f}x: {'met' if ratio <= limit else 'MISSED'})"
            print(line)
    if verdicts:
        print(f"target {'MET' if all(verdicts) else 'NOT MET'} (OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}, "
              f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']})")


if __name__ == "__main__":
    main()
