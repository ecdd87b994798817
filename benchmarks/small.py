"""Benchmark: course-sized models, where per-batch overhead, not GEMM throughput, sets the epoch time.

Two models on scikit-learn's bundled digits (1,797 samples; the configs' own split and standardization, 1,259
training samples, batch 32, 40 batches per epoch), each as its shipped config builds it:
- mlp: `mlcli/examples/quickstart.yaml`, Flatten - Linear(64, 128) - ReLU - Linear(128, 64) - ReLU -
  Linear(64, 10), softmax cross-entropy with label smoothing 0.05, L2 1e-4 on the weights, momentum SGD 0.9,
  lr 0.05 with a cosine schedule;
- cnn: `mlcli/examples/cnn_digits.yaml` on 1x8x8 images, conv16-bn-relu-conv32-bn-relu-pool-conv64-relu-pool-
  flatten-dropout(0.25)-linear(256, 10), momentum SGD 0.9, lr 0.05, cosine.

Frameworks, each run in a fresh subprocess, alternating (mlcli, torch1, torch2, sklearn, then again):
- mlcli: `setup(config)` -> `make_optimizer` / `make_schedule` -> `mlcli.training.trainer.fit` with the val/test
  splits emptied, so that an epoch is training alone (shuffle, gather, forward, loss, backward, penalty, update,
  running loss/accuracy); its time is the trainer's `seconds`, with mlcli's default threading.
- torch1 / torch2: the same network in PyTorch with a copy of mlcli's initial weights, mlcli's sample order (its
  shuffle generator), `CrossEntropyLoss(label_smoothing=eps*C/(C-1))` (mlcli's smoothing eps),
  `SGD(momentum=0.9, weight_decay=l2 on weights only)` with the lr set per epoch from mlcli's schedule, the same
  running loss/accuracy (`loss.item()`, argmax),
  at `torch.set_num_threads(1)` and `(2)`. At a constant lr torch's SGD is mlcli's momentum rule, so the first
  epoch's losses agree (printed); with the cosine schedule later epochs differ in the last digits (torch scales
  its momentum buffer by the new lr, mlcli's velocity keeps the old one) and dropout masks differ: same work.
- sklearn (mlp only): `MLPClassifier(hidden_layer_sizes=(128, 64), solver="sgd", momentum=0.9,
  nesterovs_momentum=False, batch_size=32, learning_rate_init=0.05, alpha=1e-4, max_iter=1, warm_start=True)`,
  one `fit` = one epoch on the same float32 training split (its own init, shuffle, no label smoothing).

Printed: the environment (cpus, threads, BLAS from threadpoolctl, OPENBLAS_* variables, load average), per run
the seconds of each epoch and the first and last loss, the medians (and best) over all epochs of all runs, the
ratio lines (the MLP's first, in mlp.py's form `ratio mlcli/torch: 0.42x median, ...`) against the targets
(mlp <= 0.45x torch and <= 0.7x sklearn; cnn <= 0.6x torch), then mlcli's per-batch profile of each model: the
GEMM time per batch (the same matmul calls, shapes and layouts the layers make, timed alone), the per-batch time
minus it (the overhead), and where the time goes (gather, each layer's forward and backward, loss, metrics,
penalty, optimizer; an instrumented copy of the trainer's batch loop), plus cProfile's top functions of one
epoch of `fit` in microseconds per batch.

Run with the benchmark environment (torch 2.13 CPU + scikit-learn + mlcli):
    /tmp/venv-bench/bin/python benchmarks/small.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /tmp/venv-bench/bin/python benchmarks/small.py
A framework that is not importable is skipped. `--epochs`, `--rounds`, `--models` shrink the work for a check.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "mlcli" / "examples"
CONFIGS = {"mlp": EXAMPLES / "quickstart.yaml", "cnn": EXAMPLES / "cnn_digits.yaml"}
FRAMEWORKS = {"mlp": ("mlcli", "torch1", "torch2", "sklearn"), "cnn": ("mlcli", "torch1", "torch2")}
TARGETS = {("mlp", "torch"): 0.45, ("mlp", "sklearn"): 0.7, ("cnn", "torch"): 0.6}


def load(model: str, epochs: int):
    """Config (epochs overridden), generators, the prepared data with empty val/test, and the built mlcli model."""
    from mlcli.config.load import load_config
    from mlcli.data.pipeline import PreparedData
    from mlcli.workflows.build import setup

    config = load_config(CONFIGS[model])
    config = config.model_copy(update={"train": config.train.model_copy(update={"epochs": epochs})})
    gens, data, net_model = setup(config)
    empty = data.train.subset(np.arange(0))
    data = PreparedData(train=data.train, val=empty, test=empty, standardizer=data.standardizer)
    return config, gens, data, net_model


def worker_mlcli(model: str, epochs: int) -> dict:
    from mlcli.training.trainer import fit
    from mlcli.workflows.build import make_optimizer, make_schedule

    config, gens, data, net_model = load(model, epochs)
    times, losses = [], []
    for record in fit(net_model, make_optimizer(config), make_schedule(config), data, config.train, gens):
        times.append(record["seconds"])
        losses.append(record["train_loss"])
    profile = batch_profile(model, net_model, data, config, gens)
    return {"times": times, "losses": losses, "profile": profile}


def torch_twin(net_model):
    """The mlcli network as a torch.nn.Sequential holding copies of its parameters and buffers."""
    import torch

    nn = torch.nn
    layers = []
    for layer in net_model.net.layers:
        kind = layer.kind
        if kind == "flatten":
            layers.append(nn.Flatten())
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "dropout":
            layers.append(nn.Dropout(layer.p))
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif kind == "linear":
            twin = nn.Linear(layer.in_features, layer.out_features, bias="b" in layer.params)
            _copy(twin, layer, {"weight": "W", "bias": "b"})
            layers.append(twin)
        elif kind == "conv":
            twin = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                             layer.padding, bias="b" in layer.params)
            _copy(twin, layer, {"weight": "W", "bias": "b"})
            layers.append(twin)
        elif kind == "batchnorm2d":
            twin = nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
            _copy(twin, layer, {"weight": "gamma", "bias": "beta", "running_mean": "running_mean",
                                "running_var": "running_var"})
            layers.append(twin)
        else:
            raise ValueError(f"no torch twin for layer kind {kind!r}")
    return nn.Sequential(*layers)


def _copy(twin, layer, names: dict[str, str]) -> None:
    import torch

    arrays = {**layer.params, **layer.buffers}
    with torch.no_grad():
        for theirs, mine in names.items():
            if mine in arrays:
                getattr(twin, theirs).copy_(torch.from_numpy(arrays[mine]))


def worker_torch(model: str, epochs: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from mlcli.workflows.build import make_schedule

    torch.manual_seed(0)  # torch's dropout masks: the same in every run (they differ from mlcli's in any case)

    config, gens, data, net_model = load(model, epochs)
    net = torch_twin(net_model).train()
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    n, batch = len(x), int(config.train.batch_size)
    l2 = config.train.regularization.l2
    weights = [p for name, p in net.named_parameters() if name.endswith("weight") and p.ndim > 1]
    others = [p for name, p in net.named_parameters() if not (name.endswith("weight") and p.ndim > 1)]
    opt_cfg = config.train.optimizer
    opt = torch.optim.SGD([{"params": weights, "weight_decay": l2}, {"params": others, "weight_decay": 0.0}],
                          lr=opt_cfg.lr, momentum=opt_cfg.momentum)
    eps, classes = net_model.label_smoothing, data.n_classes
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=eps * classes / (classes - 1))  # mlcli's eps/(C-1) form
    schedule = make_schedule(config)
    times, losses = [], []
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = schedule(epoch)
        t0 = time.perf_counter()
        order = torch.from_numpy(gens.shuffle.permutation(n))
        total, correct = 0.0, 0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            xb, yb = x[idx], y[idx]
            out = net(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((out.detach().argmax(1) == yb).sum())
        times.append(time.perf_counter() - t0)
        losses.append(total / n)
    return {"times": times, "losses": losses, "detail": f"torch {torch.__version__}, {torch.get_num_threads()} threads"}


def worker_sklearn(model: str, epochs: int) -> dict:
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    config, _, data, net_model = load(model, epochs)
    hidden = tuple(layer.out_features for layer in net_model.net.layers if layer.kind == "linear")[:-1]
    opt_cfg = config.train.optimizer
    clf = MLPClassifier(hidden_layer_sizes=hidden, solver="sgd", momentum=opt_cfg.momentum, nesterovs_momentum=False,
                        batch_size=int(config.train.batch_size), learning_rate_init=opt_cfg.lr,
                        alpha=config.train.regularization.l2, max_iter=1, warm_start=True, random_state=config.seed)
    x, y = data.train.x, data.train.y
    times, losses = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs):
            t0 = time.perf_counter()
            clf.fit(x, y)
            times.append(time.perf_counter() - t0)
            losses.append(float(clf.loss_))
    return {"times": times, "losses": losses, "detail": f"scikit-learn {sklearn.__version__}, "
            f"hidden {hidden}, weights {clf.coefs_[0].dtype}"}


# ------------------------------------------------------------------------------------------ mlcli's batch profile
def gemm_calls(net, xb: np.ndarray) -> list:
    """Closures making the matmul calls one training batch of `net` makes, with its shapes and layouts."""
    calls = []
    x = xb
    first = next(i for i, layer in enumerate(net.layers) if layer.params)
    for i, layer in enumerate(net.layers):
        y = layer.forward(x, True)
        if layer.kind == "linear":
            W, dy = layer.params["W"], np.ones_like(y)
            calls.append(lambda x=x, W=W: x @ W.T)
            calls.append(lambda x=x, dy=dy, g=layer.grads["W"]: np.matmul(dy.T, x, out=g))
            if i > first:
                calls.append(lambda dy=dy, W=W: dy @ W)
        elif layer.kind == "conv":
            from mlcli.nn.conv import sample_groups

            N, F, P = y.shape[0], y.shape[1], y.shape[2] * y.shape[3]
            flat, Wk, planar = layer.cache[0].copy(), layer.cache[1], layer.cache[-1]  # columns, (F, K)
            K = Wk.shape[1]
            dyt = np.ones((F, N * P), dtype=flat.dtype)
            dw = np.empty((F, K), flat.dtype)
            for g in sample_groups(N):  # conv_forward / conv_backward's GEMMs, one per group of samples
                r = slice(g.start * P, g.stop * P)
                block = flat[g.start * P * K:g.stop * P * K]
                cols = block.reshape(K, -1) if planar else block.reshape(-1, K).T  # (K, n*P)
                calls.append(lambda Wk=Wk, c=cols, o=np.empty((F, cols.shape[1]), flat.dtype):
                             np.matmul(Wk, c, out=o))
                calls.append(lambda d=dyt[:, r], c=cols, o=dw: np.matmul(d, c.T, out=o))
                if i > first:
                    calls.append(lambda Wk=Wk, d=dyt[:, r], o=np.empty((K, cols.shape[1]), flat.dtype):
                                 np.matmul(Wk.T, d, out=o))
        x = y
    return calls


def gemm_seconds(calls: list, repeat: int = 300) -> float:
    """Median seconds of one pass of all `calls` (after a warm-up)."""
    for call in calls:
        call()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for call in calls:
            call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def batch_profile(model: str, net_model, data, config, gens) -> dict:
    """Where one training batch's time goes, in microseconds: an instrumented copy of the trainer's loop over
    3 epochs (gather, per-layer forward/backward, loss, metrics, penalty, optimizer step), the GEMM time of a
    batch, and cProfile's top functions of one epoch of `fit`."""
    from mlcli.models.metrics import RunningMetrics
    from mlcli.optim.regularizers import add_penalty_grads
    from mlcli.training.threads import training_threads
    from mlcli.training.trainer import fit
    from mlcli.workflows.build import make_optimizer

    net = net_model.net
    x, y = data.train.x, data.train.y
    n, batch = len(x), int(config.train.batch_size)
    reg = config.train.regularization
    optimizer = make_optimizer(config)
    params, grads = net.params(), net.grads()
    phases: dict[str, float] = {"gather": 0.0}
    phases.update({f"{i}.{layer.kind} fwd": 0.0 for i, layer in enumerate(net.layers)})
    phases["loss"] = 0.0
    phases.update({f"{i}.{layer.kind} bwd": 0.0 for i, layer in reversed(list(enumerate(net.layers)))})
    phases.update({"metrics": 0.0, "penalty": 0.0, "optimizer": 0.0})
    first = next(i for i, layer in enumerate(net.layers) if layer.params)
    batches, total = 0, 0.0
    clock = time.perf_counter
    with training_threads(net):
        for _ in range(3):
            order = gens.shuffle.permutation(n)
            running = RunningMetrics(net_model.task, y)
            for start in range(0, n, batch):
                b0 = t0 = clock()
                idx = order[start:start + batch]
                xb, yb = x[idx], y[idx]
                phases["gather"] += clock() - t0
                out = xb
                for i, layer in enumerate(net.layers):
                    t0 = clock()
                    out = layer.forward(out, True)
                    phases[f"{i}.{layer.kind} fwd"] += clock() - t0
                t0 = clock()
                loss, dy = net_model.loss_and_grad(out, yb)
                loss = float(loss)
                phases["loss"] += clock() - t0
                for i in reversed(range(first, len(net.layers))):
                    layer = net.layers[i]
                    t0 = clock()
                    if i == first and hasattr(layer, "backward_params"):
                        layer.backward_params(dy)
                    else:
                        dy = layer.backward(dy)
                    phases[f"{i}.{layer.kind} bwd"] += clock() - t0
                t0 = clock()
                running.add(loss, out, yb, net_model.decide)
                phases["metrics"] += clock() - t0
                t0 = clock()
                if reg.l1 > 0 or reg.l2 > 0:
                    add_penalty_grads(params, grads, l1=reg.l1, l2=reg.l2, include_bias=reg.include_bias)
                phases["penalty"] += clock() - t0
                t0 = clock()
                optimizer.step(params, grads)
                phases["optimizer"] += clock() - t0
                total += clock() - b0
                batches += 1
        gemm = gemm_seconds(gemm_calls(net, x[:batch]))
    profiler = cProfile.Profile()
    config1 = config.train.model_copy(update={"epochs": 1})
    records = fit(net_model, make_optimizer(config), lambda e: optimizer.lr, data, config1, gens)
    profiler.enable()
    epoch = next(records)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    steps = -(-n // batch)
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:14]  # by own (tot) time
    functions = [(f"{Path(file).name}:{line}({name})", 1e6 * tot / steps, calls / steps)
                 for (file, line, name), (_, calls, tot, _, _) in top]
    return {"us_per_batch": 1e6 * total / batches, "gemm_us": 1e6 * gemm,
            "phases_us": {k: 1e6 * v / batches for k, v in phases.items() if v},
            "profiled_epoch_s": epoch["seconds"], "top": functions}


# ---------------------------------------------------------------------------------------------------- driver
def run_worker(model: str, framework: str, epochs: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", framework, "--models", model, "--epochs", str(epochs)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def work(framework: str, model: str, epochs: int) -> dict:
    if framework == "mlcli":
        return worker_mlcli(model, epochs)
    if framework.startswith("torch"):
        return worker_torch(model, epochs, int(framework[len("torch"):]))
    return worker_sklearn(model, epochs)


def importable(module: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], check=False, capture_output=True)
    return probe.returncode == 0


def environment() -> str:
    from threadpoolctl import threadpool_info

    from mlcli.nn import parallel

    blas = "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"{i.get('num_threads')} threads" for i in threadpool_info() if i.get("user_api") == "blas")
    env = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in
                    ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                     "MLCLI_NUM_THREADS"))
    return (f"env: {env}; cpus={os.cpu_count()}; numpy {np.__version__}; BLAS: {blas}; mlcli pool threads "
            f"{parallel.num_threads()}")


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of one run per framework, alternating")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    if args.worker:
        print(json.dumps(work(args.worker, models[0], args.epochs)))
        return

    print(environment())
    have = {"mlcli": True, "torch": importable("torch"), "sklearn": importable("sklearn")}
    runs = {m: [fw for fw in FRAMEWORKS[m] if have[fw.rstrip("12")]] for m in models}
    print(f"work: digits (quickstart split, 1,259 training samples, batch 32), {args.epochs} epochs per run, "
          f"{args.rounds} rounds of " + "; ".join(f"{m}: {' '.join(runs[m])}" for m in models)
          + f"; load average at start {load_average()}")
    results: dict[tuple[str, str], list[dict]] = {(m, fw): [] for m in models for fw in runs[m]}
    for r in range(args.rounds):
        for m in models:
            for fw in runs[m]:
                rep = run_worker(m, fw, args.epochs)
                results[m, fw].append(rep)
                detail = f"  ({rep['detail']})" if "detail" in rep else ""
                print(f"round {r + 1} {m} {fw:7s}: ms/epoch " + " ".join(f"{1e3 * t:.1f}" for t in rep["times"])
                      + f"  loss {rep['losses'][0]:.4f} .. {rep['losses'][-1]:.4f}{detail}")
    print(f"load average at end {load_average()}")
    med = {k: statistics.median(t for rep in v for t in rep["times"]) for k, v in results.items()}
    best = {k: min(t for rep in v for t in rep["times"]) for k, v in results.items()}
    for (m, fw), value in med.items():
        print(f"{m} {fw:7s}: median {1e3 * value:.1f} ms/epoch (best {1e3 * best[m, fw]:.1f})")
    verdicts = []
    for m in models:
        for fw in runs[m][1:]:
            ratio = med[m, "mlcli"] / med[m, fw]
            limit = TARGETS.get((m, fw.rstrip("12")))
            name = fw.rstrip("12")
            threads = f", torch {fw[len('torch'):]} thread(s)" if name == "torch" else ""
            line = (f"ratio mlcli/{name}: {ratio:.2f}x median, {best[m, 'mlcli'] / best[m, fw]:.2f}x best ({m}{threads}"
                    + (f"; target <= {limit:.2f}x: {'met' if ratio <= limit else 'MISSED'})" if limit else ")"))
            if limit:
                verdicts.append(ratio <= limit)
            print(line)
    if verdicts:
        print(f"targets {'MET' if all(verdicts) else 'NOT MET'} (OPENBLAS_CORETYPE="
              f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}, OPENBLAS_L2_SIZE="
              f"{os.environ.get('OPENBLAS_L2_SIZE', 'unset')})")
    for m in models:
        prof = results[m, "mlcli"][-1]["profile"]
        per, gemm = prof["us_per_batch"], prof["gemm_us"]
        print(f"mlcli {m} per batch (last run, instrumented loop): {per:.0f} us, of which GEMM {gemm:.0f} us, "
              f"overhead {per - gemm:.0f} us ({(per - gemm) / per:.0%})")
        for name, us in prof["phases_us"].items():
            print(f"  {name:24s} {us:7.1f} us")
        print(f"  cProfile of one epoch of fit ({prof['profiled_epoch_s'] * 1e3:.0f} ms with the profiler), top "
              f"own time, us/batch and calls/batch:")
        for name, us, calls in prof["top"]:
            print(f"    {name:60s} {us:7.1f} us {calls:6.1f}")


if __name__ == "__main__":
    main()
