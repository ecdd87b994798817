"""Mutants of `tools/mutate.py` that cannot change behaviour, left out of the score.

Each entry: (module, the stripped source line, the change as mutate.py prints it, why it is equivalent). A line
matches every mutant with that change on a line of that text (e.g. the seven activation `forward` signatures).
"""

_OPT = "mlcli/optim/optimizers.py"
_ACT = "mlcli/nn/activations.py"
_SPLITS = "mlcli/data/splits.py"
_LOSSES = "mlcli/nn/losses.py"
_CKPT = "mlcli/runs/checkpoint.py"

EQUIVALENT: list[tuple[str, str, str, str]] = [
    (_OPT, "BLOCK = 65536  # elements per update block: float32 w, g, two slots and the scratch take 1.25 MiB of L2",
     "`65536` -> `65537`", "the block size is a speed knob: the update is elementwise, any size gives the same bits"),
    (_OPT, "if w.size <= BLOCK:", "`<=` -> `<`",
     "a parameter of exactly BLOCK elements is then updated as one block: the same elements, the same bits"),
    (_OPT, "flat_w, flat_g = w.reshape(-1), g.reshape(-1)", "`1` -> `2`",
     "NumPy reads any negative size in reshape as 'infer this dimension': reshape(-2) is reshape(-1)"),
    (_OPT, "flat_slots = {s: a.reshape(-1) for s, a in slots.items()}", "`1` -> `2`",
     "NumPy reads any negative size in reshape as 'infer this dimension': reshape(-2) is reshape(-1)"),
    (_SPLITS, "return groups.reshape(-1).astype(np.int64), labels", "`1` -> `2`",
     "NumPy reads any negative size in reshape as 'infer this dimension': reshape(-2) is reshape(-1)"),
    (_ACT, "def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:", "`False` -> `True`",
     "activations compute the same function in training and evaluation mode; the flag is only the interface"),
    (_LOSSES, "y = y.astype(logits.dtype, copy=False)", "`False` -> `True`",
     "the targets are only read afterwards: a copy changes no value"),
    (_LOSSES, "diff = pred - target.astype(pred.dtype, copy=False)", "`False` -> `True`",
     "the targets are only read afterwards: a copy changes no value"),
]
