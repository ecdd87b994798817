"""Training: the loop as a generator of epoch records (`trainer`), the callbacks that consume them (`callbacks`:
the interface, early stopping; `checkpointing`: metrics, best and last checkpoints; `progress`), and the driver
that feeds one through the other with the resume state (`loop`). Nothing here knows about configs on disk or
command lines: `mlcli.workflows` assembles a run.
"""
