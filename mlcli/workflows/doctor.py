"""`mlcli doctor CONFIG`: the course's sanity checks on a config before a long training, in a few seconds.

    report = doctor("configs/quickstart.yaml", overrides={"train.optimizer.lr": 10})
    report.failed                 # True when a check failed (the CLI's exit 1)
    [(c.name, c.status, c.message) for c in report.checks]
    report.to_dict()              # JSON-able: {"config", "model", "failed", "checks": [{name, status, message, value}]}

Data checks run for every model; the model checks (initial loss, gradients, overfitting 20 samples, the penalty,
finiteness and the learning rate) for gradient-trained networks, each from the same initial weights (those the
config's seed gives) and a fresh optimizer. The checks and their thresholds are `mlcli.insight.doctor`'s.
"""

from __future__ import annotations

import numpy as np

from mlcli.insight.doctor import (
    Check,
    DoctorReport,
    class_balance,
    constant_features,
    duplicate_rows,
    gradient_check,
    initial_loss,
    overfit_small,
    regularization_raises_loss,
    short_run,
)
from mlcli.workflows.build import make_optimizer, resolve_config, setup

OVERFIT_SAMPLES = 20
OVERFIT_STEPS = 300
SHORT_RUN_STEPS = 30
PROBE_SAMPLES = 256
STRONG_L2 = 1e3


def doctor(config, *, overrides=None) -> DoctorReport:
    """Run every check that applies to `config` (a path, dict or Config) with `overrides` applied."""
    cfg, base_dir = resolve_config(config, overrides)
    _gens, data, model = setup(cfg, base_dir)
    report = DoctorReport(config=str(config) if not isinstance(config, dict) else cfg.name or "config",
                          model=cfg.model.type)
    report.checks += data_checks(cfg, data)
    if model.is_network:
        report.checks += network_checks(cfg, base_dir, data, model)
    return report


def data_checks(cfg, data) -> list[Check]:
    train = data.train
    checks = []
    if train.task == "classification":
        names = train.class_names or [str(c) for c in range(int(train.y.max()) + 1)]
        checks.append(class_balance(train.y, names))
    checks.append(constant_features(train.x, image=cfg.is_image_data()))
    checks.append(duplicate_rows(train.x, {"test": data.test.x, "val": data.val.x}))
    return checks


def network_checks(cfg, base_dir, data, model) -> list[Check]:
    from mlcli.workflows.gradcheck import check_config

    x, y = data.train.x, data.train.y
    initial = {name: a.copy() for name, a in model.state().items()}

    def fresh():
        model.load_state(initial)
        return make_optimizer(cfg, model)

    rng = np.random.default_rng(cfg.seed)
    probe_idx = rng.choice(len(x), size=min(PROBE_SAMPLES, len(x)), replace=False)
    probe = (x[probe_idx], y[probe_idx])
    checks = []
    loss = cfg.loss_config()  # None for a multitask model (a loss per head): no single chance-level loss
    if loss is not None and loss.type in ("softmax_cross_entropy", "sigmoid_bce"):
        checks.append(initial_loss(model, *probe, n_classes=len(data.class_names or []) or 2))

    cfg64, _ = resolve_config(cfg, ["train.dtype=float64"])
    checks.append(gradient_check(check_config(cfg64, batch=4, base_dir=base_dir, max_coords=20)))

    reg = cfg.train.regularization
    strong = max(STRONG_L2, 100 * reg.l2)
    zero_init = not any(np.any(a) for a in model.net.params().values() if a.ndim > 1)
    if not zero_init:
        checks.append(regularization_raises_loss(model, *probe, strong=strong, include_bias=reg.include_bias))

    small = rng.choice(len(x), size=min(OVERFIT_SAMPLES, len(x)), replace=False)
    checks.append(overfit_small(model, fresh(), x[small], y[small], steps=OVERFIT_STEPS))
    if zero_init:  # a zero start has no weight to penalize yet: judge the weights the steps above reached
        checks.append(regularization_raises_loss(model, *probe, strong=strong, include_bias=reg.include_bias,
                                                 where=f"at the weights after the {checks[-1].name} steps (the "
                                                       f"initial ones are zero)"))

    optimizer = fresh()
    batch = len(x) if cfg.train.batch_size == "full" or optimizer.full_batch else int(cfg.train.batch_size)
    clip = cfg.train.grad_clip.max_norm if cfg.train.grad_clip is not None else None
    checks += short_run(model, optimizer, x, y, probe, batch_size=batch, steps=SHORT_RUN_STEPS, rng=rng, reg=reg,
                        clip=clip)
    model.load_state(initial)
    return checks
