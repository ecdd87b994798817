"""Seeing inside runs: plots (matplotlib, the optional extra `plot`, Agg backend), per-layer training diagnostics,
the preflight doctor, per-class evaluation and the self-contained HTML report. Only this package imports
matplotlib, and only inside functions, so that the rest of mlcli never needs it.
"""
