"""mlcli: a command-line training toolkit for classical machine learning and neural networks on NumPy.

The data flow is config -> data -> model -> trainer -> run directory; each stage is a subpackage
(`config`, `data`, `models`, `train`, `runs`), `nn` and `optim` hold the NumPy core, `cli` the typer shell.
"""

__version__ = "0.1.0"
