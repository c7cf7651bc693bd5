"""Which committed results were measured with other weights than the shipped priors have now.

    python -m bench.stale [bench/results]

A result written through ``bench.run.machine()`` records the SHA-256 of every shipped prior's weights; it is
stale when a prior it names has been re-shipped since; one that names no prior is listed as such (check that it
used none).

A result kept on purpose as the record of one comparison or one day (a before/after pair, a suite that is not
re-run) says why in a top-level ``"historical"`` string; it is listed as historical where it would be stale.

Older results record no weights. For those the dates decide, from git: a result is stale when a prior it names
was re-committed after the result's recorded date (``machine.date``), or, without a date, after the result
file's own last commit (an upper bound on when it was measured). Otherwise it stays unknown: re-run it when it
depends on a prior.
"""
from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
import time

from .run import ROOT, shipped_weights, weights_files


def priors_named(data, names) -> set[str]:
    """Those of the shipped prior ``names`` that appear as values or keys anywhere in a result."""
    text = json.dumps({k: v for k, v in data.items() if k != "machine"})  # the record names every prior
    return {name for name in names if f'"{name}"' in text or f"{name}@" in text}


def commit_time(path: str) -> float | None:
    """Unix time of the last commit that touched ``path``; None outside a git checkout or if never committed."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%ct", "--", path], capture_output=True, text=True,
                             cwd=ROOT).stdout.strip()
    except OSError:
        return None
    return float(out) if out else None


def recorded_time(data) -> float | None:
    """The measurement date a result records (``machine.date`` or ``date``, "YYYY-MM-DD HH:MM UTC")."""
    stamp = (data.get("machine") or {}).get("date") or data.get("date")
    try:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%d %H:%M UTC"))
    except (TypeError, ValueError):
        return None


def status(data, path: str, now: dict[str, str], shipped: dict[str, float | None]) -> tuple[str, str]:
    """``(label, why)``: current, stale, historical, no prior or unknown."""
    label, why = weights_status(data, path, now, shipped)
    if label == "stale" and data.get("historical"):
        return "historical", data["historical"]
    return label, why


def weights_status(data, path: str, now: dict[str, str], shipped: dict[str, float | None]) -> tuple[str, str]:
    """What the recorded weights (or, for older results, the dates) say, before a ``historical`` reason counts."""
    recorded = data.get("machine", {}).get("weights")
    used = priors_named(data, now)
    if recorded is not None:
        if not used:  # e.g. training benches: nothing to compare, but a default prior could hide here
            return "no prior", ""
        changed = sorted(p for p in used if recorded.get(p) != now.get(p))
        return ("stale", f"{', '.join(changed)} re-shipped") if changed else ("current", "")
    measured, bound = recorded_time(data), "its date"
    if measured is None:
        measured, bound = commit_time(path), "its last commit"
    later = sorted(p for p in used if measured is not None and (shipped.get(p) or 0) > measured + 60)
    if later:
        return "stale", f"{', '.join(later)} re-shipped after {bound}"
    return "unknown", ""


def main() -> None:
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")
    now = shipped_weights()
    shipped = {name: commit_time(path) for name, path in weights_files().items()}
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".json")):
        path = os.path.join(folder, name)
        with open(path) as f:
            text = f.read()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:  # JSON lines (one run per line): no machine, but the runs name their priors
            data = {"runs": [json.loads(line) for line in text.splitlines() if line.strip()]}
        if not isinstance(data, dict):
            data = {"runs": data}
        label, why = status(data, path, now, shipped)
        print(f"{label:10s} {name}" + (f"  ({why})" if why else ""))


if __name__ == "__main__":
    main()
