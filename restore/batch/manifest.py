"""The batch manifest: one JSON object per line, append-only, flushed and fsynced per record.

A run killed mid-write leaves at most one truncated last line, which readers skip. Split runs
(``--num-parts``) write one manifest per part so that machines never write the same file; readers merge
every ``manifest*.jsonl`` in the output folder.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Any, Iterator

MANIFEST_GLOB = "manifest*.jsonl"


def manifest_name(num_parts: int = 1, part_id: int = 0) -> str:
    return "manifest.jsonl" if num_parts == 1 else f"manifest.part{part_id}-of-{num_parts}.jsonl"


class Manifest:
    """Append-only JSON-lines log of per-input records in ``folder``."""

    def __init__(self, folder: str, name: str = "manifest.jsonl") -> None:
        self.folder = folder
        self.path = os.path.join(folder, name)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        # One write call of a complete line, then fsync: a kill leaves whole records (or one torn tail).
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> Iterator[dict[str, Any]]:
        """Every readable record of every manifest in the folder, in file order."""
        return read_records(self.folder)


def read_records(folder: str) -> Iterator[dict[str, Any]]:
    for path in sorted(glob.glob(os.path.join(folder, MANIFEST_GLOB))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # torn last line of a killed run
                    continue
                if isinstance(record, dict):
                    yield record


def finished(folder: str) -> dict[str, dict[str, Any]]:
    """The latest ``done`` record per output path."""
    out: dict[str, dict[str, Any]] = {}
    for record in read_records(folder):
        if record.get("status") == "done" and record.get("output"):
            out[record["output"]] = record
    return out
