"""One seed, several independent generators: one per source of randomness.

    gens = generators(seed)  # gens.data, gens.split, gens.init, gens.shuffle, gens.dropout, gens.augment

Derived with `np.random.SeedSequence(seed).spawn(...)` in a fixed order, so turning augmentation on does not change
the initial weights, and the same config + seed gives identical results, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STREAMS = ("data", "split", "init", "shuffle", "dropout", "augment")


@dataclass
class Generators:
    data: np.random.Generator
    split: np.random.Generator
    init: np.random.Generator
    shuffle: np.random.Generator
    dropout: np.random.Generator
    augment: np.random.Generator


def generators(seed: int) -> Generators:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return Generators(*(np.random.Generator(np.random.PCG64(c)) for c in children))
