"""Peak memory and time of one network call of the default RGB prior on a large image, untiled and tiled.

    python -m bench.tiling_memory [--side 1024] [-o bench/results/tiling_memory.json]

Each setting runs in its own process (peak RSS is per process), with one torch thread.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from .run import ROOT, machine

CHILD = """
import json, resource, sys, time, torch
import restore
torch.set_num_threads(1)
side, tile = int(sys.argv[1]), sys.argv[2]
prior = restore.prior("natural-rgb")
prior.tile = None if tile == "none" else int(tile)
x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
start = time.perf_counter()
with torch.no_grad():
    prior.eps(x, 500)
print(json.dumps({"tile": prior.tile, "seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "tiling_memory.json"))
    args = parser.parse_args(argv)
    rows = []
    for tile in ("none", "512", "256"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.side), tile], capture_output=True, text=True,
                             check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        rows.append({"side": args.side, **json.loads(out.stdout.strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    with open(args.output, "w") as f:
        json.dump({"machine": machine(), "runs": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
