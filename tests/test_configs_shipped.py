"""Every config shipped in configs/ trains briefly, and its best.npz evaluates with `mlcli eval --json`.

Network configs run for 2 epochs (`--set train.epochs=2`, or one more than the schedule's warmup, which must be
shorter than training); classical models have no train section and are fitted as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, invoke, read_json, read_jsonl, train_run

SHIPPED = sorted(CONFIGS.glob("*.yaml"))
METRICS = {"classification": {"loss", "accuracy"}, "regression": {"loss", "mse", "r2"},
           "reconstruction": {"loss", "reconstruction_mse"}}


def brief_overrides(path: Path) -> tuple[list[str], int]:
    """`--set` arguments that shorten training, and the number of epochs the run will then have."""
    raw = yaml.safe_load(path.read_text())
    if "train" not in raw:
        return [], 1
    warmup = raw["train"].get("schedule", {}).get("warmup_epochs", 0)
    epochs = max(2, warmup + 1)
    return ["--set", f"train.epochs={epochs}"], epochs


def test_configs_are_shipped():
    assert len(SHIPPED) >= 5
    assert CONFIGS / "quickstart.yaml" in SHIPPED


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_trains_briefly_and_its_best_checkpoint_evaluates(config, tmp_path):
    overrides, epochs = brief_overrides(config)
    run = train_run(config, tmp_path / "runs", *overrides)
    summary = read_json(run / "summary.json")
    assert summary["status"] in ("completed", "early_stopped")
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == list(range(1, epochs + 1))
    if summary["task"] == "multitask":  # the total loss and each head's metrics
        from mlcli.config.load import load_config

        expected = set(load_config(config).metric_names())
    else:
        expected = METRICS[summary["task"]]
    if summary["model"] == "knn":  # votes give no probabilities, so KNN reports no loss
        expected = {"accuracy"}

    result = invoke("eval", run / "checkpoints" / "best.npz", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) - {"members"} == {"checkpoint", "split", "n", "metrics"}  # members: an ensemble's
    assert report["split"] == "test" and report["n"] == summary["n_test"] > 0
    assert set(report["metrics"]) == expected
    assert set(summary["test"]) == expected
    for name, value in report["metrics"].items():
        assert value == pytest.approx(summary["test"][name], rel=1e-4, abs=1e-6), name
