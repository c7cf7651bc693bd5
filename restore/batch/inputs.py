"""Input discovery for ``restore batch``: files, folders and globs -> a sorted list of paths; parts."""
from __future__ import annotations

import glob
import os

from ..errors import InvalidInputError

_GLOB_CHARS = set("*?[")


def _readable_extensions() -> tuple[str, ...]:
    from ..plugins import registry

    return tuple(e for c in registry().all("reader") for e in c.metadata.get("extensions", ()))


def expand_inputs(items: list[str]) -> list[str]:
    """Expand files, folders and (quoted) globs into absolute paths, sorted by name, duplicates removed.

    A folder contributes its non-hidden files with a registered reader extension (not recursive); a glob
    contributes every file it matches (``**`` recurses); an explicit file is taken as given.

    Raises:
        InvalidInputError: a file or folder that does not exist, a glob that matches nothing, no inputs.
    """
    exts = None
    found: list[str] = []
    for item in items:
        if _GLOB_CHARS & set(item):
            matches = [m for m in glob.glob(item, recursive=True) if os.path.isfile(m)]
            if not matches:
                raise InvalidInputError(f"the pattern '{item}' matches no files; check the path and quote the glob")
            found += matches
        elif os.path.isdir(item):
            exts = exts or _readable_extensions()
            found += [os.path.join(item, n) for n in os.listdir(item)
                      if not n.startswith(".") and n.lower().endswith(exts) and os.path.isfile(os.path.join(item, n))]
        elif os.path.isfile(item):
            found.append(item)
        else:
            raise InvalidInputError(f"input '{item}' does not exist; pass files, folders or quoted globs")
    paths = sorted({os.path.abspath(p) for p in found}, key=lambda p: (os.path.basename(p), p))
    if not paths:
        raise InvalidInputError(f"no input files found in {', '.join(items)}; "
                                f"folders are searched for {', '.join(sorted(set(exts or ())))}")
    return paths


def select_part(paths: list[str], num_parts: int, part_id: int) -> list[str]:
    """Round-robin share ``part_id`` of ``num_parts`` of the sorted ``paths``.

    The parts are disjoint and together cover ``paths``, provided every part sees the same input list.
    """
    if num_parts < 1:
        raise InvalidInputError(f"--num-parts must be >= 1, got {num_parts}")
    if not 0 <= part_id < num_parts:
        raise InvalidInputError(f"--part-id must be in [0, {num_parts - 1}] for --num-parts {num_parts}, got {part_id}")
    return paths[part_id::num_parts]
