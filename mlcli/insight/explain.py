"""The update equations a config makes the trainer apply, with its numbers substituted, for `mlcli summary --explain`.

    explain_config(cfg, n_classes=10)
    -> [("loss", "L = mean over the batch of -sum_c q_c log softmax(z)_c; q = 0.95 ..."),
        ("gradient", "g <- dL/dw + 0.0001 * w   for weights (biases: g <- dL/db)"),
        ("update", "v <- 0.9 v - lr_e * g;  w <- w + v   (momentum; v starts at 0)"),
        ("schedule", "lr_e = 0.05 * (1 + cos(pi e / 30)) / 2   for epochs e = 0 .. 29"), ...]

The order is the trainer's per batch (`mlcli.training.trainer`): the data loss's gradient on the batch, plus the
penalty's gradient (`mlcli.optim.regularizers`), clipped by global norm, then the optimizer's rule
(`mlcli.optim.optimizers`, `mlcli.optim.newton`) at the epoch's learning rate (`mlcli.optim.schedules`). Each
formula here is the one in those modules' docstrings and DESIGN.md's "Exact definitions"; `e` is the 0-based
epoch (the rate is set once per epoch) and `t` the optimizer's step counter (1 on the first step).
"""

from __future__ import annotations

import re

from mlcli.optim.registry import make_optimizer


def num(value: float) -> str:
    """A config number as a user would write it: 0.05, 1e-7, 30."""
    text = f"{float(value):g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), text)


def explain_config(cfg, n_classes: int | None = None) -> list[tuple[str, str]]:
    """(part, equation) pairs for the config `cfg`; `n_classes` fills in label smoothing's share per class."""
    if cfg.is_fitted_in_closed_form():
        return [("fit", _closed_form(cfg.model))]
    train = cfg.train
    if cfg.model.type == "multitask":
        parts = [("loss", _multitask_loss(cfg.model)),
                 *((f"loss {name}", _loss(_HeadLoss(head), None)) for name, head in cfg.model.heads.items())]
    else:
        parts = [("loss", _loss(cfg.loss_config(), n_classes))]
    reg = train.regularization
    if reg.l1 or reg.l2:
        parts.append(("penalty", _penalty(reg)))
    opt_cfg = train.optimizer
    second_order = make_optimizer(opt_cfg.type, **opt_cfg.model_dump(exclude={"type"})).full_batch
    batch = "the whole training set" if train.batch_size == "full" else f"a batch of {train.batch_size} samples"
    if second_order:
        batch = "the whole training set (Newton's method takes full batches)"
    parts.append(("batch", f"each step sees {batch}; {train.epochs} epochs"))
    if second_order:
        parts.append(("update", _newton(opt_cfg, reg)))
        if train.grad_clip is not None:
            parts.append(("clip", "not applied: Newton's step uses the exact gradient of its closure"))
        return parts
    parts.append(("gradient", _gradient(reg)))
    if train.grad_clip is not None:
        m = num(train.grad_clip.max_norm)
        parts.append(("clip", f"if ||g|| > {m}: g <- g * {m} / ||g||   (||g||: the L2 norm of all gradients as one "
                              f"vector)"))
    parts.append(("update", _update(train.optimizer, "lr_e" if _varies(train.schedule) else num(train.optimizer.lr))))
    parts.append(("schedule", _schedule(train.schedule, train.optimizer.lr, train.epochs)))
    return parts


class _HeadLoss:
    """A multitask head's loss as `_loss` reads a loss section (type, label_smoothing)."""

    def __init__(self, head) -> None:
        self.type = head.loss_name()
        self.label_smoothing = head.label_smoothing


def _multitask_loss(model) -> str:
    terms = " + ".join(f"{num(head.weight)} * L_{name}" for name, head in model.heads.items())
    return (f"L = {terms}   (each head's loss on its own target; the trunk's gradient is the sum of the heads' "
            f"gradients)")


def _varies(schedule) -> bool:
    return schedule.type != "constant" or schedule.warmup_epochs > 0


def _loss(loss, n_classes: int | None) -> str:
    if loss.type == "softmax_cross_entropy":
        eps = loss.label_smoothing
        if not eps:
            return "L = mean over the batch of -log softmax(z)_y   (z: the logits, y: the true class)"
        other = f"{num(eps)} / {n_classes - 1} = {num(eps / (n_classes - 1))}" if n_classes else f"{num(eps)} / (C - 1)"
        return (f"L = mean over the batch of -sum_c q_c log softmax(z)_c, with q_y = 1 - {num(eps)} = "
                f"{num(1 - eps)} for the true class and q_c = {other} for each other class")
    if loss.type == "sigmoid_bce":
        return "L = mean over the batch of -[y log s(z) + (1 - y) log(1 - s(z))], s(z) = 1 / (1 + exp(-z))"
    return "L = mean over all elements of (y_hat - y)^2"


def _penalty(reg) -> str:
    terms = []
    if reg.l2:
        terms.append(f"{num(reg.l2)} / 2 * sum(w^2)")
    if reg.l1:
        terms.append(f"{num(reg.l1)} * sum(|w|)")
    which = "every parameter" if reg.include_bias else "the weights W (biases, batchnorm and PReLU parameters exempt)"
    return f"L_total = L + {' + '.join(terms)}   over {which}"


def _gradient(reg) -> str:
    terms = ["dL/dw"]
    if reg.l2:
        terms.append(f"{num(reg.l2)} * w")
    if reg.l1:
        terms.append(f"{num(reg.l1)} * sign(w)")
    if len(terms) == 1:
        return "g <- dL/dw   (the batch's mean loss gradient, by backprop)"
    exempt = "" if reg.include_bias else "   for weights W (other parameters: g <- dL/dw)"
    return f"g <- {' + '.join(terms)}{exempt}"


def _update(opt, lr: str) -> str:
    """The rule of `opt` at learning rate `lr` (a number, or `lr_e` when the schedule changes it)."""
    t = opt.type
    if t == "sgd":
        return f"w <- w - {lr} * g   (SGD)"
    if t == "momentum":
        mu = num(opt.momentum)
        return f"v <- {mu} v - {lr} * g;  w <- w + v   (momentum; v starts at 0)"
    if t == "nesterov":
        mu = num(opt.momentum)
        return (f"v_prev <- v;  v <- {mu} v - {lr} * g;  w <- w - {mu} * v_prev + (1 + {mu}) * v   "
                f"(Nesterov; v starts at 0)")
    if t == "adagrad":
        return f"a <- a + g*g;  w <- w - {lr} * g / (sqrt(a) + {num(opt.eps)})   (Adagrad; a starts at 0)"
    if t == "rmsprop":
        b, eps = num(opt.beta), num(opt.eps)
        average = f"a <- {b} a + (1 - {b}) g*g"
        if opt.momentum > 0:
            mu = num(opt.momentum)
            return (f"{average};  v <- {mu} v - {lr} * g / (sqrt(a) + {eps});  w <- w + v   "
                    f"(RMSProp with momentum; a, v start at 0)")
        return f"{average};  w <- w - {lr} * g / (sqrt(a) + {eps})   (RMSProp; a starts at 0)"
    b1, b2, eps = num(opt.beta1), num(opt.beta2), num(opt.eps)
    moments = f"m <- {b1} m + (1 - {b1}) g;  a <- {b2} a + (1 - {b2}) g*g"
    if opt.bias_correction:
        return (f"{moments};  m_hat = m / (1 - {b1}^t);  a_hat = a / (1 - {b2}^t);  "
                f"w <- w - {lr} * m_hat / (sqrt(a_hat) + {eps})   (Adam; m, a start at 0, t = 1, 2, ... the step)")
    return f"{moments};  w <- w - {lr} * m / (sqrt(a) + {eps})   (Adam without bias correction; m, a start at 0)"


def _newton(opt, reg) -> str:
    l2 = f" + {num(reg.l2)} / 2 * ||W||^2" if reg.l2 else ""
    return (f"theta <- theta - (H + {num(opt.damping)} I)^-1 grad   (damped Newton, one step per epoch; grad and "
            f"Hessian H of L{l2} over the whole training set, theta = [W, b])")


def _schedule(sched, base_lr: float, epochs: int) -> str:
    """lr_e for the epochs e = 0 .. epochs - 1 of the run (after warmup the schedule counts from e - warmup)."""
    base = num(base_lr)
    warm = sched.warmup_epochs
    e = f"(e - {warm})" if warm else "e"
    if sched.type == "constant":
        body = f"lr_e = {base}"
    elif sched.type == "step":
        body = f"lr_e = {base} * {num(sched.gamma)}^floor({e} / {sched.step_size})"
    elif sched.type == "exponential":
        body = f"lr_e = {base} * {num(sched.gamma)}^{e}"
    elif sched.type == "cosine":
        body = _cosine(base, sched.min_lr, e, str(epochs - warm))
    else:
        cycles = str(sched.t0) if sched.t_mult == 1 else f"{sched.t0}, {sched.t0 * sched.t_mult}, ... (x{sched.t_mult})"
        body = (_cosine(base, sched.min_lr, "e_c", "T_c") + f", where e_c counts the epochs since {e} entered its "
                f"cycle, cycles of length T_c = {cycles} (SGDR: back to {base} at each restart)")
    if not warm:
        return f"{body}   for the epochs e = 0 .. {epochs - 1}"
    return (f"lr_e = {base} * (e + 1) / {warm + 1}   for e = 0 .. {warm - 1} (warmup); then {body}   for "
            f"e = {warm} .. {epochs - 1}")


def _cosine(base: str, min_lr: float, e: str, period: str) -> str:
    if min_lr:
        return f"lr_e = {num(min_lr)} + ({base} - {num(min_lr)}) * (1 + cos(pi {e} / {period})) / 2"
    return f"lr_e = {base} * (1 + cos(pi {e} / {period})) / 2"


def _closed_form(model) -> str:
    """The one-shot fit of a classical model."""
    if model.type == "knn":
        return (f"no training steps: predicts the {'distance-weighted' if model.weights == 'distance' else 'majority'}"
                f" vote of the k = {model.k} nearest training samples ({model.metric} distance)")
    if model.type == "gaussian":
        return (f"no training steps: one Gaussian per class ({model.covariance} covariance + {num(model.reg)} I, "
                f"{model.priors} priors) fitted by maximum likelihood; predicts argmax of the log posterior")
    l2 = f" + {num(model.l2)} ||w||^2" if model.l2 else ""
    return f"no training steps: w, b = argmin ||y - X w - b||^2{l2}, solved in closed form (intercept not penalized)"
