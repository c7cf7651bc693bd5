"""Peak resident memory of a block of work (Linux: reset VmHWM through /proc/self/clear_refs)."""
from __future__ import annotations

import os
from contextlib import contextmanager


def _read_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@contextmanager
def peak_rss():
    """Yield a dict that receives ``peak_mb`` (process peak RSS during the block), or None off Linux."""
    out: dict[str, float | None] = {"peak_mb": None}
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        resettable = True
    except OSError:
        resettable = False
    try:
        yield out
    finally:
        hwm = _read_kb("VmHWM")
        if hwm is not None and resettable:
            out["peak_mb"] = hwm / 1024
        elif os.name == "posix":
            import resource

            out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
