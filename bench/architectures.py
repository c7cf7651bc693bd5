"""Published networks on this CPU: parameters, GFLOPs per call, estimated and measured seconds per call.

    python -m bench.architectures [--measure dps-ffhq-256,adm-imagenet-64,score-sde-vp-cifar10-ddpmpp]
                                  [-o bench/results/architectures.json]

Random weights (no downloads): the cost of a call does not depend on the weights. Every preset is counted
on the meta device (what ``restore list priors`` shows); the presets in ``--measure`` are also built for
real and timed for one call at their training resolution, batch 1, float32, one torch thread, so the
estimate can be checked against the clock. Also times a 512² DPS-FFHQ call (the prior tiles only above
its tile size, recorded).
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from .run import ROOT, machine, write_json


def timed_call(prior, side: int) -> float:
    x = torch.randn(1, prior.channels, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        prior.eps(x[..., : prior.multiple, : prior.multiple], 1)  # warm-up: first-call allocations
        start = time.perf_counter()
        prior.eps(x, 500 if prior.schedule.T > 500 else prior.schedule.T // 2)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from restore_models.architectures.cost import estimate, machine_flops_per_second
    from restore_models.architectures.loading import build_prior, merged
    from restore_models.architectures.presets import PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", default="dps-ffhq-256,adm-imagenet-64,score-sde-vp-cifar10-ddpmpp")
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "bench", "results", "architectures.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name, spec in PRESETS.items():
        est = estimate(spec["architecture"], spec["config"])
        row = {"preset": name, "architecture": spec["architecture"], "files": spec["files"],
               "resolution": spec["config"].get("image_size"), **est}
        if name in args.measure.split(","):
            row["load_average_1min_before"] = os.getloadavg()[0]
            prior = build_prior(merged({"preset": name}))
            side = prior.network.config.image_size
            row["measured_seconds_per_call"] = timed_call(prior, side)
            if name == "dps-ffhq-256":
                row["seconds_per_call_512"] = timed_call(prior, 512)
                row["tile"], row["tile_overlap"] = prior.tile, prior.tile_overlap
            del prior
        rows.append(row)
        print(row, flush=True)
    write_json(args.output, {"benchmark": "architectures", "machine": machine(),
                             "load_average_1min_at_end": os.getloadavg()[0],  # shared machines time slower
                             "machine_gflops_per_second": machine_flops_per_second() / 1e9,
                             "command": "python -m bench.architectures", "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
