"""Which committed results were measured with other weights than the shipped priors have now.

    python -m bench.stale [bench/results]

A result written through ``bench.run.machine()`` records the SHA-256 of every shipped prior's weights; it is
stale when a prior it names has been re-shipped since; one that names no prior is listed as such (check that it
used none). Results that record no weights predate the record and are listed as unknown: re-run them when they
depend on a prior.
"""
from __future__ import annotations

import json
import os
import sys

from .run import shipped_weights


def priors_named(data, names) -> set[str]:
    """Those of the shipped prior ``names`` that appear as values or keys anywhere in a result."""
    text = json.dumps({k: v for k, v in data.items() if k != "machine"})  # the record names every prior
    return {name for name in names if f'"{name}"' in text or f"{name}@" in text}


def main() -> None:
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")
    now = shipped_weights()
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".json")):
        with open(os.path.join(folder, name)) as f:
            text = f.read()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:  # JSON lines (one run per line) record no machine
            data = None
        recorded = data.get("machine", {}).get("weights") if isinstance(data, dict) else None
        if recorded is None:
            print(f"unknown  {name}")
            continue
        used = priors_named(data, now)
        if not used:  # e.g. training benches: nothing to compare, but a default prior could hide here
            print(f"no prior {name}")
            continue
        changed = sorted(p for p in used if recorded.get(p) != now.get(p))
        print(f"{'stale' if changed else 'current':8s} {name}" + (f"  ({', '.join(changed)} re-shipped)" if changed else ""))


if __name__ == "__main__":
    main()
