"""mlcli: a command-line training toolkit for classical machine learning and neural networks on NumPy.

The public Python API; each function is what the matching `mlcli` command calls:

    import mlcli
    result = mlcli.train("configs/quickstart.yaml", overrides={"train.epochs": 5})   # -> RunResult
    result.status, result.metrics, result.best_checkpoint, result.history
    folds = mlcli.cv("configs/knn.yaml", folds=5)                                     # -> CVResult
    mlcli.resume(result.run_dir, epochs=10)                                           # -> RunResult
    mlcli.evaluate(result.run_dir, split="val")                                       # -> {"metrics": ...}
    model = mlcli.load(result.run_dir); model.predict(X); model.predict_proba(X)
    mlcli.predict(result.run_dir, "new.npz"); mlcli.gradcheck(config); mlcli.summary(config)
    best = mlcli.sweep("configs/sweeps/quickstart_grid.yaml").best                    # -> SweepResult
    mlcli.list_runs("runs", sort="val_loss"); mlcli.compare_runs([run_a, run_b])
    mlcli.doctor(config); mlcli.explain(config); mlcli.plot([run]); mlcli.report(run)      # look inside

Errors are `mlcli.errors.MlcliError` subclasses (ConfigError, DataError, CheckpointError, ...), never SystemExit.
The layers: config -> data -> models -> runs -> training -> sweeps -> workflows -> cli, with the NumPy core
(`nn`, `optim`) at the bottom; the names here are imported on first use, so that `import mlcli` stays light.
"""

from mlcli import errors
from mlcli.version import __version__

__all__ = ["CVResult", "Callback", "Config", "DoctorReport", "RunResult", "SweepResult", "TrainedModel",
           "__version__", "build_ensemble", "compare_runs", "cv", "doctor", "errors", "evaluate", "explain",
           "gradcheck", "list_runs", "load", "load_config", "plot", "predict", "report", "resume", "show_run",
           "summary", "sweep", "train"]


def __getattr__(name: str):
    """Import the API's modules on first use (explicit imports: no name is ever resolved from a string)."""
    if name in ("train", "resume", "RunResult"):
        from mlcli.workflows import train as module
    elif name in ("cv", "CVResult"):
        from mlcli.workflows import cv as module
    elif name == "evaluate":
        from mlcli.workflows import evaluate as module
    elif name == "predict":
        from mlcli.workflows import predict as module
    elif name in ("load", "TrainedModel"):
        from mlcli.workflows import load as module
    elif name == "gradcheck":
        from mlcli.workflows import gradcheck as module
    elif name in ("list_runs", "show_run", "compare_runs"):
        from mlcli.workflows import runs as module
    elif name == "build_ensemble":
        from mlcli.workflows import ensemble_build as module
    elif name in ("sweep", "SweepResult"):
        from mlcli.workflows import sweep as module
    elif name in ("summary", "explain"):
        from mlcli.workflows import summary as module
    elif name in ("doctor", "DoctorReport"):
        from mlcli.workflows import doctor as module
    elif name == "plot":
        from mlcli.workflows import plot as module
    elif name == "report":
        from mlcli.workflows import report as module
    elif name == "Callback":
        from mlcli.training import callbacks as module
    elif name == "Config":
        from mlcli.config import schema as module
    elif name == "load_config":
        from mlcli.config import load as module
    else:
        raise AttributeError(f"module 'mlcli' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
