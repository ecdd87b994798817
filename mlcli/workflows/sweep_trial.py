"""One trial of a sweep as a pure task: (resolved config, seeds, budget) -> scores, metrics and the run's files.

    outcome = run_trial({"trial": "t0003", "config": {...}, "seeds": [123], "metric": "val_loss", "mode": "min",
                         "cv": None, "epochs": None, "resume_files": None, "keep_checkpoints": True,
                         "dest": "/abs/runs/sweep-.../trials/t0003"})

It trains in a private temporary folder and returns every file it wrote as bytes (`files`: relative path ->
bytes), so that the process that started the sweep is the only writer of the sweep directory and workers on other
machines need no shared file system. Paths inside the summaries name `dest`, where the driver puts the files.
What the task computes depends only on its arguments: the same task gives the same scores, bit for bit, in this
process, in a process pool or on a Dask worker, first time or after a retry (it runs BLAS on one thread, since
the way a product is split over threads changes its last bits).

A trial is one run (`seeds` has one seed), one run per seed (`seed-1/`, `seed-2/`, ...), or a k-fold cross
validation (`cv`: the cv directory's files). Its score per run is the best value of `metric` over the run's
epochs. With `epochs` (an ASHA rung) the run stops after that many epochs of its configured `train.epochs`, so
that the learning-rate schedule is the full run's; `resume_files` (the run directory of its previous rung)
continues it exactly from that rung's last.npz, and the metrics of both rungs end up in one metrics.jsonl.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path

from mlcli.errors import MlcliError


class StopAtEpoch:
    """Ends training after `epochs` epochs (an ASHA rung), as if that were where the run stopped."""

    name = "stop_at_epoch"

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, run, record: dict) -> None:
        if record["epoch"] >= self.epochs and not run.stop_training:  # early stopping ends it for good
            run.stop_training = run.pause = True


def best_score(history: list[dict], metric: str, mode: str) -> float:
    """The best finite value of `metric` over the epochs (NaN when there is none)."""
    values = [r[metric] for r in history if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    if not values:
        return float("nan")
    return min(values) if mode == "min" else max(values)


def run_trial(task: dict, loaded=None) -> dict:
    """Run `task` (see the module docstring); returns status, scores, metrics, epochs, seconds and files.
    `loaded`: the dataset as read (mlcli.data.pipeline.load_all), sent once to each worker by the driver."""
    started = time.perf_counter()
    from mlcli.training.threads import one_thread

    tmp = Path(tempfile.mkdtemp(prefix="mlcli-trial-"))
    try:
        with one_thread():  # the same scores on every scheduler (see one_thread)
            out = _run(task, tmp, loaded)
    except MlcliError as err:
        out = {"status": "failed", "error": " ".join(str(err).split()), "files": {}}
        if task.get("collect_failed", True) and (tmp / "work").exists():
            out["files"] = _collect(tmp / "work", task, keep_checkpoints=False)
    finally:
        seconds = time.perf_counter() - started
    shutil.rmtree(tmp, ignore_errors=True)
    out["seconds"] = seconds
    out["trial"] = task["trial"]
    return out


def _run(task: dict, tmp: Path, loaded) -> dict:
    from mlcli.config.load import build_config
    from mlcli.workflows.cv import cv
    from mlcli.workflows.train import run_config

    work = tmp / "work"
    metric, mode = task["metric"], task["mode"]
    cfg = build_config(task["config"], f"trial {task['trial']}", {})
    stopped_early = False
    if task.get("cv"):
        result = cv(cfg.model_copy(update={"seed": task["seeds"][0]}), task["cv"], runs_dir=tmp / "cv", quiet=True)
        shutil.move(str(result.cv_dir), work)
        histories = [_history(work / f"fold-{f['fold']}") for f in result.folds]
        statuses = [f["status"] for f in result.folds]
    elif len(task["seeds"]) > 1:
        histories, statuses = [], []
        for s, seed in enumerate(task["seeds"], start=1):
            run = run_config(cfg.model_copy(update={"seed": seed}), run_dir=work / f"seed-{s}", quiet=True,
                             loaded=loaded)
            histories.append(run.history)
            statuses.append(run.status)
    else:
        cfg = cfg.model_copy(update={"seed": task["seeds"][0]})
        callbacks = [StopAtEpoch(task["epochs"])] if task.get("epochs") else []
        if task.get("resume_files"):
            histories = [_continue(task, cfg, tmp, work, callbacks)]
        else:
            histories = [run_config(cfg, run_dir=work, callbacks=callbacks, quiet=True, loaded=loaded).history]
        summary = _summary(work)
        statuses, stopped_early = [summary["status"]], summary["status"] == "early_stopped"
    scores = [best_score(h, metric, mode) for h in histories]
    epochs = max((h[-1]["epoch"] for h in histories if h), default=0)
    metrics = _mean_records([_best_record(h, metric, mode) for h in histories])
    return {"status": "completed", "scores": scores, "score": float(sum(scores) / len(scores)),
            "metrics": metrics, "epochs": int(epochs), "run_statuses": statuses, "stopped_early": stopped_early,
            "error": None,
            "files": _collect(work, task, keep_checkpoints=task.get("keep_checkpoints", True))}


def _continue(task: dict, cfg, tmp: Path, work: Path, callbacks: list) -> list[dict]:
    """Continue the previous rung's run (its files in `resume_files`) into `work`; the full history."""
    from mlcli.runs.rundir import read_metrics
    from mlcli.workflows.train import resume

    previous = tmp / "previous"
    _write_files(previous, task["resume_files"])
    before = read_metrics(previous)
    result = resume(previous, runs_dir=tmp / "next", callbacks=callbacks, quiet=True)
    shutil.move(str(result.run_dir), work)
    _prepend_metrics(work, previous)
    return before + result.history


def _summary(run_dir: Path) -> dict:
    import json

    return json.loads((run_dir / "summary.json").read_text())


def _history(run_dir: Path) -> list[dict]:
    from mlcli.runs.rundir import read_metrics

    return read_metrics(run_dir)


def _best_record(history: list[dict], metric: str, mode: str) -> dict:
    score = best_score(history, metric, mode)
    best = next((r for r in history if r.get(metric) == score), history[-1] if history else {})
    return {k: v for k, v in best.items() if k not in ("seconds", "samples_per_sec")}


def _mean_records(records: list[dict]) -> dict:
    """The per-key mean of the numeric values of several records (one record: itself)."""
    keys = [k for k in records[0] if all(isinstance(r.get(k), (int, float)) for r in records)] if records else []
    return {k: float(sum(r[k] for r in records) / len(records)) for k in keys}


def _prepend_metrics(work: Path, previous: Path) -> None:
    """One metrics.jsonl / metrics.csv for the whole trial: the previous rung's lines, then this rung's."""
    for name, header in (("metrics.jsonl", False), ("metrics.csv", True)):
        old, new = previous / name, work / name
        if not old.is_file():
            continue
        new_lines = new.read_text().splitlines(keepends=True) if new.is_file() else []
        tail = new_lines[1:] if header and new_lines else new_lines
        new.write_text(old.read_text() + "".join(tail))


def _collect(root: Path, task: dict, *, keep_checkpoints: bool) -> dict[str, bytes]:
    """Every file under `root` as bytes (checkpoints only if kept), with `root` renamed `dest` in summaries."""
    files: dict[str, bytes] = {}
    dest = task.get("dest")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".npz" and not (keep_checkpoints or (task.get("epochs") and path.name == "last.npz")):
            continue
        data = path.read_bytes()
        if dest and path.suffix == ".json":
            data = data.replace(str(root).encode(), str(dest).encode())
        files[rel] = data
    return files


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
