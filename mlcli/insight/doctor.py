"""The preflight doctor's checks, the course's sanity checks before a long training (cs231n's "babysitting").

    checks = [class_balance(y, names), constant_features(x, image=False), duplicate_rows(train_x, {"test": x})]
    checks += [initial_loss(model, x, y, n_classes), gradient_check(report), overfit_small(model, opt, x, y), ...]
    DoctorReport(config="quickstart.yaml", model="mlp", checks=checks).failed   # -> True when one failed

Each check returns a `Check`: its name, a status (`ok`, `warn` or `fail`), a one-line message saying what was
measured and, when it is not ok, what to do, and the measured value. The thresholds:

- `initial_loss` (softmax or sigmoid output): at the initial weights the mean loss should be close to ln(C), the
  loss of a uniform prediction (label smoothing does not change that): ok within 25% of ln(C), warn between
  0.5 and 3 times it, else fail (initial weights far too large, or outputs that know the labels before training).
- `gradients`: the float64 numerical check of `mlcli.workflows.gradcheck`: fail when a relative error exceeds
  `tol` (1e-6) on the coordinates checked.
- `overfit_20`: 20 training samples, the configured optimizer at its base rate, regularization off, full batch,
  up to `steps` steps: ok at 100% accuracy (or, for regression and autoencoders, a loss below 1% of the initial
  one), warn at >= 90% (5%), else fail (the model, its rate or its gradients cannot fit even a tiny set).
- `regularization`: the loss with a strong L2 penalty (`strong`) must exceed the loss without one by > 1%, at the
  initial weights, or at the weights after the overfitting steps when the initial ones are all zero (a linear
  model's usual start); else fail: the penalty reaches no weight (nothing penalized, or weights that stay zero,
  as in a zero-initialized MLP, whose hidden units all stay dead).
- `finite` and `learning_rate`: a few steps at the configured batch size, base rate, regularization and clipping;
  `finite` fails on a NaN/inf loss or weight; `learning_rate` compares the loss of a fixed subset before and after:
  fail when it rose by more than 10% (rate too large) or fell by less than 1% while the weights moved by less
  than `MOVED` (1e-3) relative to their norm (rate orders of magnitude too small); warn when it fell by less than
  1% though the weights moved (a model too small for the data) or by less than 5%.
- data: `class_balance` warns when the smallest class has < 50% of the largest's training samples and fails
  below 10%; `constant_features` warns when some features never vary in training (ok for images, whose borders
  often do not) and fails when all do; `duplicates` warns when a test (or val) sample equals a training sample
  and fails when >= 1% do (the test score would measure memory).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from mlcli.optim.regularizers import add_penalty_grads, clip_grad_norm, penalty

STATUSES = ("ok", "warn", "fail")
MOVED = 1e-3  # relative weight change over the short run below which a rate counts as orders of magnitude too small


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    message: str
    value: float | int | None = None


@dataclass
class DoctorReport:
    config: str
    model: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    def to_dict(self) -> dict:
        return {"config": self.config, "model": self.model, "failed": self.failed,
                "checks": [asdict(c) for c in self.checks]}


def _graded(value: float, ok: bool, warn: bool) -> str:
    return "ok" if ok else "warn" if warn else "fail"


# ------------------------------------------------------------------------------------------------ data


def class_balance(y: np.ndarray, names: list[str]) -> Check:
    """y: (N,) training labels of C = len(names) classes."""
    counts = np.bincount(y, minlength=len(names))
    small, large = int(counts.argmin()), int(counts.argmax())
    ratio = counts[small] / counts[large]
    message = (f"smallest class '{names[small]}' has {counts[small]} training samples, largest '{names[large]}' "
               f"{counts[large]} (ratio {ratio:.2f})")
    if ratio < 0.5:
        message += "; accuracy hides the small classes: read per-class recall (mlcli eval) or resample"
    return Check("class_balance", _graded(ratio, ratio >= 0.5, ratio >= 0.1), message, float(ratio))


def constant_features(x: np.ndarray, *, image: bool) -> Check:
    """x: (N, ...) training samples; a feature is constant when it takes one value over the split."""
    flat = x.reshape(len(x), -1)
    constant = np.flatnonzero(np.all(flat == flat[:1], axis=0))
    n, d = len(constant), flat.shape[1]
    if n == 0:
        return Check("constant_features", "ok", f"all {d} features vary in the training split", 0)
    shown = ", ".join(map(str, constant[:8])) + (", ..." if n > 8 else "")
    if n == d:
        return Check("constant_features", "fail", f"all {d} features are constant in the training split: there is "
                     f"nothing to learn from; check the data file and its columns", n)
    if image:
        return Check("constant_features", "ok", f"{n} of {d} pixels never vary in training (image borders often "
                     f"do not): {shown}", n)
    return Check("constant_features", "warn", f"{n} of {d} features never vary in the training split ({shown}): "
                 f"they carry no information; drop them", n)


def _row_keys(x: np.ndarray) -> np.ndarray:
    """One opaque bytes key per row of x (N, ...), for exact equality of whole samples."""
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    return flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel()


def duplicate_rows(train_x: np.ndarray, others: dict[str, np.ndarray]) -> Check:
    """Samples of the other splits (name -> (M, ...)) that equal a training sample exactly."""
    train = _row_keys(train_x)
    found = {name: int(np.isin(_row_keys(x), train).sum()) for name, x in others.items() if len(x)}
    total = sum(len(x) for x in others.values())
    dup = sum(found.values())
    if dup == 0:
        return Check("duplicates", "ok", f"no {' or '.join(found) or 'held-out'} sample equals a training sample", 0)
    share = dup / max(total, 1)
    where = ", ".join(f"{n} {name}" for name, n in found.items() if n)
    return Check("duplicates", "warn" if share < 0.01 else "fail",
                 f"{where} sample(s) equal a training sample ({share:.1%} of the held-out samples): their scores "
                 f"measure memory; deduplicate the data before splitting", dup)


# ------------------------------------------------------------------------------------------------ model


def initial_loss(model, x: np.ndarray, y: np.ndarray, n_classes: int) -> Check:
    """The mean loss at the initial weights (eval mode) against ln(C)."""
    loss = float(model.evaluate(x, y)["loss"])
    expected = math.log(n_classes)
    ratio = loss / expected
    message = f"initial loss {loss:.4g}, ln({n_classes}) = {expected:.4g} (ratio {ratio:.2f})"
    if ratio > 1.25:
        message += ("; the initial outputs are far from uniform: the initial weights are large (try model.init "
                    "scheme xavier, or small) or an activation's outputs are biased")
    elif ratio < 0.75:
        message += "; below a uniform guess before any training: do the inputs contain the labels?"
    return Check("initial_loss", _graded(ratio, 0.75 <= ratio <= 1.25, 0.5 <= ratio <= 3.0), message, loss)


def gradient_check(report: dict, tol: float = 1e-6) -> Check:
    """report: name -> GradCheck of `mlcli.workflows.gradcheck.check_config`."""
    worst_name = max(report, key=lambda name: report[name].error)
    worst = report[worst_name].error
    failed = [name for name, c in report.items() if not c.passed(tol)]
    if failed:
        return Check("gradients", "fail", f"analytic and numerical gradients disagree for {', '.join(failed)} "
                     f"(worst relative error {worst:.2e} > {tol:g} at {worst_name}): the backward pass is wrong; "
                     f"see mlcli gradcheck", worst)
    return Check("gradients", "ok", f"backprop matches central differences in float64 (worst relative error "
                 f"{worst:.1e}, at {worst_name})", worst)


def train_steps(model, optimizer, batches, *, l1: float = 0.0, l2: float = 0.0, include_bias: bool = False,
                clip: float | None = None) -> list[float]:
    """Take one optimizer step per (xb, yb) of `batches` as the trainer does (penalty gradients, clipping by
    global norm, the step with its closure); returns the data loss of each batch, stopping at a non-finite one."""
    params, grads = model.net.params(), model.net.grads()
    losses = []
    for xb, yb in batches:
        with np.errstate(all="ignore"):
            loss, _ = model.train_batch(xb, yb)
            losses.append(loss)
            if not math.isfinite(loss):
                break
            if l1 or l2:
                add_penalty_grads(params, grads, l1=l1, l2=l2, include_bias=include_bias)
            if clip is not None:
                clip_grad_norm(grads, clip)
            optimizer.step(params, grads, closure=lambda xb=xb, yb=yb: model.objective_closure(xb, yb, l2)())
    return losses


def overfit_small(model, optimizer, x: np.ndarray, y: np.ndarray, *, steps: int = 300, every: int = 10) -> Check:
    """Fit the (about 20) samples x, y full batch with no regularization for up to `steps` steps."""
    before = float(model.evaluate(x, y)["loss"])
    classify = model.task == "classification"
    score, done = 0.0, 0
    while done < steps:
        losses = train_steps(model, optimizer, [(x, y)] * every)
        done += len(losses)
        if not math.isfinite(losses[-1]):
            return Check("overfit_20", "fail", f"the loss became {losses[-1]} after {done} steps on {len(x)} samples; "
                         f"lower train.optimizer.lr", None)
        metrics = model.evaluate(x, y)
        score = metrics["accuracy"] if classify else metrics["loss"] / before if before > 0 else 0.0
        if (score == 1.0) if classify else score <= 0.01:
            break
    if classify:
        status = _graded(score, score == 1.0, score >= 0.9)
        message = f"{score:.0%} training accuracy on {len(x)} samples after {done} steps"
    else:
        status = _graded(score, score <= 0.01, score <= 0.05)
        message = f"loss {score:.2%} of its initial value on {len(x)} samples after {done} steps"
    if status != "ok":
        message += (" (regularization off); a model that cannot fit this little data is too small, or its rate too "
                    "low or too high: try a larger model or another train.optimizer.lr")
    return Check("overfit_20", status, message, float(score))


def regularization_raises_loss(model, x: np.ndarray, y: np.ndarray, *, strong: float, include_bias: bool = False,
                               where: str = "at the initial weights") -> Check:
    """Loss plus a strong L2 penalty vs the plain loss, at the model's current weights (described by `where`)."""
    plain = float(model.evaluate(x, y)["loss"])
    with_penalty = plain + penalty(model.net.params(), l2=strong, include_bias=include_bias)
    rise = with_penalty / plain - 1.0 if plain > 0 else float("inf")
    message = f"loss {plain:.4g} -> {with_penalty:.4g} with l2 = {strong:g} {where}"
    if rise <= 0.01:
        message += (": the penalty reaches no weight, they are all zero (zero init keeps an MLP's hidden units dead: "
                    "use model.init scheme he or xavier)")
    return Check("regularization", "ok" if rise > 0.01 else "fail", message, float(rise))


def short_run(model, optimizer, x: np.ndarray, y: np.ndarray, probe: tuple[np.ndarray, np.ndarray], *,
              batch_size: int, steps: int, rng: np.random.Generator, reg, clip: float | None) -> list[Check]:
    """`finite` and `learning_rate`: `steps` steps on random batches of x, y; the loss of `probe` before/after."""
    before = float(model.evaluate(*probe)["loss"])
    start = {name: w.astype(np.float64) for name, w in model.net.params().items()}
    batches = []
    for _ in range(steps):
        idx = rng.choice(len(x), size=min(batch_size, len(x)), replace=False)
        batches.append((x[idx], y[idx]))
    losses = train_steps(model, optimizer, batches, l1=reg.l1, l2=reg.l2, include_bias=reg.include_bias, clip=clip)
    finite_weights = all(np.isfinite(w).all() for w in model.net.params().values())
    if not math.isfinite(losses[-1]) or not finite_weights:
        bad = losses[-1] if not math.isfinite(losses[-1]) else "a non-finite weight"
        return [Check("finite", "fail", f"{bad} after {len(losses)} of {steps} steps at the configured rate; lower "
                      f"train.optimizer.lr or add train.grad_clip", len(losses)),
                Check("learning_rate", "fail", "the loss diverged: the learning rate is too large", None)]
    with np.errstate(all="ignore"):
        after = float(model.evaluate(*probe)["loss"])
    finite = Check("finite", "ok", f"loss and weights finite over {steps} steps", steps)
    if not math.isfinite(after):
        return [finite, Check("learning_rate", "fail", f"the loss became {after}: the rate is too large", None)]
    change = after / before - 1.0 if before > 0 else 0.0
    moved = _relative_change(start, model.net.params())
    message = f"loss {before:.4g} -> {after:.4g} ({change:+.1%}) after {steps} steps, weights moved {moved:.1e}"
    if change > 0.10:
        status, message = "fail", message + ": it rose; the learning rate looks too large, lower train.optimizer.lr"
    elif change > -0.01 and moved < MOVED:
        status, message = "fail", message + ": both barely moved; the learning rate looks orders of magnitude too small"
    elif change > -0.01:
        status, message = "warn", message + (": the weights move but the loss does not fall; the model may be too "
                                             "small for the data (or already at its best)")
    elif change > -0.05:
        status, message = "warn", message + ": a slow start; the learning rate may be too small"
    else:
        status = "ok"
    return [finite, Check("learning_rate", status, message, float(change))]


def _relative_change(start: dict[str, np.ndarray], now: dict[str, np.ndarray]) -> float:
    """||w_now - w_start|| / ||w_start|| over all parameters as one vector (inf from all-zero weights)."""
    diff = math.sqrt(sum(float(np.sum((now[k] - w) ** 2)) for k, w in start.items()))
    norm = math.sqrt(sum(float(np.sum(w**2)) for w in start.values()))
    return diff / norm if norm > 0 else (math.inf if diff > 0 else 0.0)
