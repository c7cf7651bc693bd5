"""Per-input seeds: a pure function of the run seed and the input's file name."""
from __future__ import annotations

import hashlib
import os


def item_seed(run_seed: int, input_path: str) -> int:
    """Seed of one input: the first 63 bits of ``sha256(f"{run_seed}:{basename}")``.

    Only the base name enters, so the seed (and hence the output) does not depend on the folder, the
    machine, the order of the inputs, the engine or on which part of a split run processes the input.
    """
    digest = hashlib.sha256(f"{run_seed}:{os.path.basename(input_path)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
