"""The command-line shell: one typer command per file (train, eval, cv, summary, gradcheck, config, data).

Commands only parse options, call a library function and render its result; errors become one `error:` line and
an exit code (see `app.guarded`). Only this package imports typer and rich.
"""
