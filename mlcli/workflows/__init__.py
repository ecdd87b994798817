"""The workflows: one plain function per thing a user does, what the CLI and the public API (`import mlcli`) call.

- `train`:     `train(config, ...)`, `resume(run_dir, ...)` -> RunResult
- `cv`:        `cv(config, folds, ...)` -> CVResult; `cv_grid` for comma-list overrides, `best_setting`
- `evaluate`:  `evaluate(checkpoint_or_run, split=, data=)` (several checkpoints: their ensemble, `ensemble`)
- `predict`:   `predict(checkpoint_or_run, inputs)`, `write_predictions_csv`
- `load`:      `load(checkpoint_or_run)` -> a scikit-learn-like TrainedModel
- `gradcheck`, `summary`: the gradient check and the layer table of a config
- `build`:     config resolution (path, dict or Config; overrides) and model/optimizer setup shared by all

This is the only package that knows about run directories, checkpoints and data at once.
"""
