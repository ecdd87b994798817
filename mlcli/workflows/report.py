"""One self-contained HTML page about a run: `mlcli.report` and `mlcli report`.

    report("runs/mlp-20261201-120000")                    # -> runs/mlp-20261201-120000/report.html
    report("runs/mlp-20261201-120000", out="mlp.html")

Sections: summary (status, best epoch, train/val/test metrics), metrics per epoch (the best one marked), plots
(those `mlcli plot` draws for the run, inline), per-class metrics and the confusion matrix of the best checkpoint
on the test split (classifiers; `mlcli.evaluate(..., per_class=True)`), the resolved config, and the environment
(command line, overrides, versions, BLAS and threads, git commit) from summary.json. A plot or table that cannot
be made (no checkpoint, a dataset no longer on this machine) is replaced by one line saying why, so a report of a
broken run still opens. Needs matplotlib for the plots. See `mlcli.insight.report_html` for the page itself.
"""

from __future__ import annotations

from pathlib import Path

from mlcli.errors import ConfigError, MlcliError
from mlcli.runs.atomic import atomic_write_text
from mlcli.runs.index import is_run_dir
from mlcli.workflows.plot import RunView, figure_of, png_of

MAX_CONFIG_BYTES = 1 << 20
SUMMARY_FIELDS = ("name", "run_dir", "status", "model", "task", "seed", "monitor", "best_epoch", "epochs_completed",
                  "stopped_epoch", "final_weights", "n_train", "n_val", "n_test", "started_at", "ended_at", "seconds")
CAPTIONS = {"curves": "Learning curves: train (dashed) and val (solid) loss and metric per epoch; the star marks "
                      "the best epoch, the dotted line the learning rate.",
            "lr": "Learning rate per epoch.",
            "confusion": "Confusion matrix of the best checkpoint on the test split: counts and row-normalized.",
            "weights": "First-layer weights as images (class templates of a linear model, units of an MLP).",
            "filters": "First convolution's filters.",
            "diagnostics": "Per-layer diagnostics: activation std by layer, saturated / dead fractions, gradient "
                           "norms and update-to-weight ratios per epoch."}


def report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of the run directory `run` to `out` (default `RUN/report.html`); returns its path.

    Raises ConfigError when `run` is not a run directory or matplotlib is missing, RunIOError when `out` cannot be
    written."""
    from mlcli.insight import report_html as h
    from mlcli.insight.figures import matplotlib_module

    run = Path(run)
    if not is_run_dir(run):
        raise ConfigError(f"{run}: not a run directory (it holds config.yaml and metrics.jsonl); a report is of one "
                          f"run: for a cv or sweep directory use mlcli plot or mlcli runs compare")
    matplotlib = matplotlib_module()
    view = RunView(run, run.name)
    s = view.summary
    sections = [h.Section("summary", "Summary", _summary(view, h)),
                h.Section("metrics", "Metrics per epoch", _metrics(view, h)),
                h.Section("plots", "Plots", _plots(view, h)),
                h.Section("per-class", "Per-class metrics", _per_class(view, h)),
                h.Section("config", "Configuration", _config(run, h)),
                h.Section("environment", "Environment", _environment(s, h, matplotlib.__version__))]
    subtitle = " · ".join(str(v) for v in (s.get("model"), s.get("status"), s.get("ended_at") or s.get("started_at"),
                                            str(run)) if v)
    target = Path(out) if out is not None else run / "report.html"
    atomic_write_text(target, h.page(f"mlcli report: {s.get('name') or run.name}", subtitle, sections))
    return target


def _summary(view: RunView, h) -> str:
    s = view.summary
    if not s:
        return h.note("no summary.json: the run never ended (killed, or still running)")
    body = h.kv_table({k: s.get(k) for k in SUMMARY_FIELDS})
    best, test = s.get("best") or {}, s.get("test") or {}
    names = sorted({k.split("_", 1)[1] for k in best if k.startswith(("train_", "val_"))} | set(test))
    rows = [[split, *(best.get(f"{split}_{m}") for m in names)] for split in ("train", "val")
            if any(f"{split}_{m}" in best for m in names)]
    if test:
        rows.append(["test", *(test.get(m) for m in names)])
    if rows:
        body += f"<h3>Results of the best epoch ({h.esc(s.get('best_epoch'))})</h3>" + h.table(["split", *names], rows)
    return body


def _metrics(view: RunView, h) -> str:
    records = view.records
    if not records:
        return h.note("no epoch recorded in metrics.jsonl")
    columns = list(dict.fromkeys(k for r in records for k in r))
    best = view.series.best_epoch
    highlight = next((i for i, r in enumerate(records) if r.get("epoch") == best), None)
    return h.table(columns, [[r.get(c) for c in columns] for r in records], highlight=highlight, scroll=True)


def _plots(view: RunView, h) -> str:
    parts = []
    for kind in view.applicable():
        try:
            parts.append(h.image(png_of(figure_of(view, kind)), kind, CAPTIONS[kind]))
        except MlcliError as err:
            parts.append(h.note(f"{kind}: not drawn: {err}"))
    return "".join(parts)


def _per_class(view: RunView, h) -> str:
    if not view.has_checkpoint:
        return h.note("no checkpoint to evaluate")
    try:
        if not view.is_classifier:
            return h.note(f"not a classifier (task: {view.summary.get('task')})")
        result = view.evaluation("test")
    except MlcliError as err:
        return h.note(f"not evaluated: {err}")
    report = result["per_class"]
    rows = [[c["class"], c["precision"], c["recall"], c["f1"], c["support"]] for c in report["classes"]]
    rows += [[f"{avg} avg", report[avg]["precision"], report[avg]["recall"], report[avg]["f1"],
              report[avg]["support"]] for avg in ("macro", "weighted")]
    body = (f"<p>Best checkpoint on the {h.esc(result['split'])} split, {h.esc(result['n'])} samples; "
            f"accuracy {h.fmt(result['metrics'].get('accuracy'))}"
            + "".join(f", {h.esc(k)} accuracy {h.fmt(v)}" for k, v in result.items() if k.startswith("top"))
            + ".</p>")
    body += h.table(["class", "precision", "recall", "f1", "support"], rows)
    labels = result["confusion"]["labels"]
    matrix = result["confusion"]["matrix"]
    body += "<h3>Confusion matrix (rows: true class, columns: predicted)</h3>"
    body += h.table(["true \\ predicted", *labels], [[label, *row] for label, row in zip(labels, matrix, strict=True)],
                    scroll=True)
    return body


def _config(run: Path, h) -> str:
    try:
        with open(run / "config.yaml", "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        return h.note(f"config.yaml: {err.strerror or err}")
    text = raw[:MAX_CONFIG_BYTES].decode("utf-8", "replace")
    return "<p>The resolved config (overrides applied, defaults filled in): config.yaml.</p>" + h.pre(text) + (
        h.note(f"cut at {MAX_CONFIG_BYTES} bytes") if len(raw) > MAX_CONFIG_BYTES else "")


def _environment(s: dict, h, matplotlib_version: str) -> str:
    versions = s.get("versions") if isinstance(s.get("versions"), dict) else {}
    threads = s.get("threads") if isinstance(s.get("threads"), dict) else {}
    items = {"command": s.get("command"), "overrides": " ".join(map(str, s.get("overrides") or [])) or None,
             "git commit": s.get("git_commit"),
             **{f"{k} version": v for k, v in versions.items() if not isinstance(v, (list, dict))},
             "cpu count": threads.get("cpu_count"), "mlcli threads": threads.get("mlcli_pool"),
             **{f"env {k}": v for k, v in (threads.get("env") or {}).items()},
             "matplotlib (this report)": matplotlib_version}
    body = h.kv_table(items)
    blas = [b for b in versions.get("blas") or [] if isinstance(b, dict)]
    if blas:
        keys = ["internal_api", "version", "num_threads", "architecture"]
        body += "<h3>BLAS</h3>" + h.table(keys, [[b.get(k) for k in keys] for b in blas])
    return body
