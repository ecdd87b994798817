"""Hyperparameter sweeps, the parts that know no run directories: search spaces and samplers (grid, random,
Optuna's TPE), the ASHA pruner, the executors that run trials (serial, processes, Dask), the ledger and the
statistics of a comparison. `mlcli.workflows.sweep` assembles them into `mlcli sweep` / `mlcli.sweep`.
"""
