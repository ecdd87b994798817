"""Benchmark: a small CNN trained by mlcli's own training code against the same network in PyTorch (CPU).

The network (CIFAR-sized input, 3x32x32):
    conv3x3(3->32, pad 1) - ReLU - maxpool2 - conv3x3(32->64, pad 1) - ReLU - maxpool2 - flatten - linear(4096->10)
trained with softmax cross-entropy and SGD momentum 0.9, lr 0.01, batch 64, on 5,000 synthetic float32 samples.
The mlcli side is what `mlcli train` runs: a Config (`model: {type: cnn, layers: [...]}`, data from an npz written
here, no standardization, no validation/test split), `mlcli.workflows.build.setup` + `make_optimizer` + `make_schedule`
and the trainer's `fit` generator, whose epoch records give the seconds.

Runs alternate A B A B (mlcli, torch, mlcli, torch), each in a fresh subprocess of 2 epochs, so that one run's
memory and warm caches do not leak into the next. Printed per run: seconds per epoch. Then the median epoch time of
each framework, their ratio, and peak memory:
  - `rss delta`: peak resident set size during training (VmHWM, reset after imports, data loading and model
    building) minus the RSS at that point; the same measure for both frameworks (it includes allocator caching
    and library workspaces);
  - `tracemalloc peak` (mlcli only): peak of the NumPy allocations traced during 10 training batches, measured
    after the timed epochs (tracemalloc slows Python down, so it is not on while timing).
Finally a per-layer forward/backward time breakdown of mlcli over 20 batches (with the threading training uses),
in a separate timed pass over the trained network (the first layer's backward is `backward_params`, as in
training, where no input gradient is needed).

Run with the benchmark environment (torch 2.13 CPU + numpy + mlcli):
    /tmp/venv-bench/bin/python benchmarks/cnn.py
Without torch importable it prints the mlcli runs only. OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from
the environment; the script prints their values as set. To measure with both unset:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /tmp/venv-bench/bin/python benchmarks/cnn.py
`--samples`, `--epochs`, `--rounds` shrink the work for a quick check. `--threads N` runs both frameworks on N
threads (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS for the workers, `torch.set_num_threads`); on a machine shared
with other jobs `--threads 1` gives steadier ratios, as spinning BLAS threads suffer most from contention.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from mlcli.config.schema import Config
from mlcli.nn.losses import softmax_cross_entropy
from mlcli.nn.network import Sequential
from mlcli.training.threads import training_threads
from mlcli.training.trainer import fit
from mlcli.workflows.build import make_optimizer, make_schedule, setup

BATCH = 64
LR = 0.01
MOMENTUM = 0.9


def synthetic_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n float32 images (n, 3, 32, 32) ~ N(0, 1) and int64 labels (n,) in [0, 10)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, n)


def mlcli_config(npz: Path, epochs: int) -> Config:
    """The benchmark CNN as an mlcli config (float32; the cnn builder appends the final Linear(4096 -> 10))."""
    conv = {"type": "conv", "kernel": 3, "padding": 1}
    return Config.model_validate({
        "name": "bench-cnn", "seed": 1,
        "data": {"type": "npz", "path": str(npz), "standardize": False, "val_fraction": 0.0,
                 "test_fraction": 0.0},
        "model": {"type": "cnn", "layers": [
            {**conv, "out_channels": 32}, {"type": "relu"}, {"type": "maxpool", "kernel": 2},
            {**conv, "out_channels": 64}, {"type": "relu"}, {"type": "maxpool", "kernel": 2},
            {"type": "flatten"}]},
        "train": {"epochs": epochs, "batch_size": BATCH, "optimizer": {"type": "momentum", "lr": LR,
                                                                      "momentum": MOMENTUM}},
    })


def mlcli_layer_breakdown(net: Sequential, X: np.ndarray, y: np.ndarray, batches: int
                          ) -> list[tuple[str, float, float]]:
    """Mean milliseconds per batch of each layer's forward and backward: [(name, fwd_ms, bwd_ms)]."""
    fwd = np.zeros(len(net.layers))
    bwd = np.zeros(len(net.layers))
    for b in range(batches):
        xb = X[b * BATCH:(b + 1) * BATCH]
        for i, layer in enumerate(net.layers):
            t0 = time.perf_counter()
            xb = layer.forward(xb, True)
            fwd[i] += time.perf_counter() - t0
        _, dy = softmax_cross_entropy(xb, y[b * BATCH:(b + 1) * BATCH])
        for i in reversed(range(len(net.layers))):
            t0 = time.perf_counter()
            if i == 0:
                net.layers[0].backward_params(dy)
            else:
                dy = net.layers[i].backward(dy)
            bwd[i] += time.perf_counter() - t0
    return [(f"{i}.{layer.kind}({layer.extra_repr()})", 1e3 * fwd[i] / batches, 1e3 * bwd[i] / batches)
            for i, layer in enumerate(net.layers)]


def _rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _max_rss_mib() -> float:
    """Peak resident set size (VmHWM) in MiB since the last `_reset_peak_rss()`."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: write 5 to clear_refs), so that the peak measured next
    belongs to training alone, not to loading the data before it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def worker_mlcli(samples: int, epochs: int) -> dict:
    X, y = synthetic_data(samples)
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "bench.npz"
        np.savez(npz, x=X, y=y)
        config = mlcli_config(npz, epochs)
        gens, data, model = setup(config)
    optimizer, schedule = make_optimizer(config), make_schedule(config)
    del X  # the trainer holds its own (float32) copy, data.train.x
    _reset_peak_rss()
    base = _rss_mib()
    times, losses = [], []
    for record in fit(model, optimizer, schedule, data, config.train, gens):
        times.append(record["seconds"])
        losses.append(record["train_loss"])
    rss_delta = _max_rss_mib() - base
    x, y = data.train.x, data.train.y
    tracemalloc.start()
    for start in range(0, 10 * BATCH, BATCH):
        model.train_batch(x[start:start + BATCH], y[start:start + BATCH])
        optimizer.step(model.net.params(), model.net.grads())
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    with training_threads(model.net):  # the same threading as training
        breakdown = mlcli_layer_breakdown(model.net, x, y, min(20, samples // BATCH))
    return {"times": times, "losses": losses, "rss_delta_mib": rss_delta, "traced_peak_mib": traced_peak,
            "breakdown": breakdown}


def worker_torch(samples: int, epochs: int) -> dict:
    import torch

    X_np, y_np = synthetic_data(samples)
    X, y = torch.from_numpy(X_np), torch.from_numpy(y_np)
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 10),
    )
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)
    _reset_peak_rss()
    base = _rss_mib()
    times, losses = [], []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(samples, generator=gen)
        total = 0.0
        for start in range(0, samples, BATCH):
            idx = order[start:start + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / samples)
        times.append(time.perf_counter() - t0)
    return {"times": times, "losses": losses, "rss_delta_mib": _max_rss_mib() - base,
            "threads": torch.get_num_threads(), "version": torch.__version__}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_worker(framework: str, samples: int, epochs: int, threads: int | None) -> dict:
    """Run one framework's training in a fresh interpreter and return its JSON report."""
    cmd = [sys.executable, __file__, "--worker", framework, "--samples", str(samples), "--epochs", str(epochs)]
    env = dict(os.environ)
    if threads:
        env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="A B rounds (mlcli run, then torch run)")
    parser.add_argument("--threads", type=int, help="BLAS/torch threads for both frameworks (default: theirs)")
    parser.add_argument("--worker", choices=["mlcli", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "torch" and args.threads:
            import torch

            torch.set_num_threads(args.threads)
        report = (worker_mlcli if args.worker == "mlcli" else worker_torch)(args.samples, args.epochs)
        print(json.dumps(report))
        return

    env = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                                    "OMP_NUM_THREADS")}
    print("env: " + ", ".join(f"{k}={v}" for k, v in env.items()) + f"; cpus={os.cpu_count()}; numpy "
          f"{np.__version__}")
    have_torch = torch_available()
    if not have_torch:
        print("torch is not importable: timing mlcli only")
    print(f"work: {args.samples} samples 3x32x32 float32, batch {BATCH}, {args.epochs} epochs per run, threads "
          f"{args.threads or 'default'}")
    frameworks = ["mlcli", "torch"] if have_torch else ["mlcli"]
    results: dict[str, list[dict]] = {f: [] for f in frameworks}
    for r in range(args.rounds):
        for fw in frameworks:
            rep = run_worker(fw, args.samples, args.epochs, args.threads)
            results[fw].append(rep)
            extra = f" (torch {rep['version']}, {rep['threads']} threads)" if fw == "torch" else ""
            print(f"round {r + 1} {fw:5s}: s/epoch " + " ".join(f"{t:.2f}" for t in rep["times"])
                  + f"  loss {rep['losses'][-1]:.4f}  rss delta {rep['rss_delta_mib']:.0f} MiB{extra}")
    med = {fw: statistics.median(t for rep in results[fw] for t in rep["times"]) for fw in frameworks}
    rss = {fw: max(rep["rss_delta_mib"] for rep in results[fw]) for fw in frameworks}
    traced = max(rep["traced_peak_mib"] for rep in results["mlcli"])
    print(f"mlcli: median {med['mlcli']:.2f} s/epoch, peak rss delta {rss['mlcli']:.0f} MiB, "
          f"tracemalloc peak {traced:.0f} MiB")
    if have_torch:
        print(f"torch: median {med['torch']:.2f} s/epoch, peak rss delta {rss['torch']:.0f} MiB")
        print(f"ratio mlcli/torch: time {med['mlcli'] / med['torch']:.2f}x, rss delta "
              f"{rss['mlcli'] / max(rss['torch'], 1e-9):.2f}x  (OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}, "
              f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']})")
    print("mlcli per-layer ms/batch (forward, backward):")
    for name, f_ms, b_ms in results["mlcli"][-1]["breakdown"]:
        print(f"  {name:62s} {f_ms:7.2f} {b_ms:7.2f}")


if __name__ == "__main__":
    main()
