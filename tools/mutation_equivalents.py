"""Mutants of `tools/mutate.py` that cannot change behaviour, left out of the score.

Each entry: (module, the stripped source line, the change as mutate.py prints it, why it is equivalent).
"""

EQUIVALENT: list[tuple[str, str, str, str]] = [
]
