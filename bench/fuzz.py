"""Count malformed inputs and how many produced anything but a clean one-line error (goal: zero).

    python -m bench.fuzz [--per-kind 60] [--out bench/results/fuzz.json]

Three sources, all through ``restore.cli.main``: random corruptions (truncation, flipped bytes, garbage
header, huge size field; numpy RNG, seed 0) of a small valid file of every format, the fixed corpus in
tests/data/bad/, and the usage-error table of tests/test_cli_usage.py. A corrupted file that still decodes
and restores (exit 0, output written) counts as ``ok``.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzzing import KINDS, classify, run_cli  # noqa: E402


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    n, kind = len(data), rng.integers(4)
    if kind == 0:
        return data[: int(rng.integers(0, n))]
    out = bytearray(data)
    if kind == 1:
        for pos in rng.integers(0, n, size=int(rng.integers(1, 9))):
            out[pos] ^= int(rng.integers(1, 256))
    elif kind == 2:
        junk = rng.integers(0, 256, size=int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
        out[: len(junk)] = junk
    else:
        pos = int(rng.integers(0, max(1, min(n, 400) - 4)))
        value = int(rng.choice([2**31 - 1, 65535, 10**9, 2**32 - 1]))
        out[pos: pos + 4] = struct.pack("<I" if rng.integers(2) else ">I", value)
    return bytes(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=60, help="random corruptions per format")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fuzz.json"))
    args = ap.parse_args()
    from bench.run import write_json
    from restore.cli import main as cli
    from test_cli_usage import USAGE_ERRORS

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    work = tempfile.mkdtemp(prefix="restore-fuzz-")
    result: dict = {"per_kind": args.per_kind, "fuzz": {}, "corpus": {}, "usage": {}, "bad_examples": []}
    for kind in sorted(KINDS):
        seed = KINDS[kind][1]()
        counts = {"tried": 0, "ok": 0, "clean": 0, "bad": 0}
        for _ in range(args.per_kind):
            verdict, detail = classify(kind, mutate(seed, rng), work)
            counts["tried"] += 1
            counts[verdict] += 1
            if verdict == "bad":
                result["bad_examples"].append({"kind": kind, "detail": detail[:300]})
        result["fuzz"][kind] = counts
        print(kind, counts, flush=True)
    corpus = sorted(p for p in (ROOT / "tests" / "data" / "bad").iterdir() if p.name != "make_corpus.py")
    c = {"tried": 0, "clean": 0, "ok": 0, "bad": 0}
    for p in corpus:
        verdict, detail = classify(p.name.split("-")[0], p.read_bytes(), work)
        c["tried"] += 1
        c[verdict] += 1
        if verdict == "bad":
            result["bad_examples"].append({"kind": p.name, "detail": detail[:300]})
    result["corpus"] = c
    good = str(Path(work) / "usage.png")
    Path(good).write_bytes(KINDS["png"][1]())
    u = {"tried": 0, "clean": 0, "ok": 0, "bad": 0}
    for argv, expected in USAGE_ERRORS:
        out_dir = tempfile.mkdtemp(dir=work)
        verdict, detail = run_cli(cli, [good if a == "IMG" else a for a in argv], os.path.join(out_dir, "none"),
                                  out_dir)
        verdict = "clean" if verdict == "clean" and expected in detail else "bad"
        u["tried"] += 1
        u[verdict] += 1
        if verdict == "bad":
            result["bad_examples"].append({"kind": " ".join(argv), "detail": detail[:300]})
    result["usage"] = u
    tried = sum(v["tried"] for v in result["fuzz"].values()) + c["tried"] + u["tried"]
    bad = sum(v["bad"] for v in result["fuzz"].values()) + c["bad"] + u["bad"]
    result["total"] = {"tried": tried, "not_clean": bad}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["command"] = f"python -m bench.fuzz --per-kind {args.per_kind}"
    write_json(args.out, result)
    print(f"{tried} malformed inputs tried, {bad} gave anything but a clean one-line error; {args.out}")


if __name__ == "__main__":
    main()
