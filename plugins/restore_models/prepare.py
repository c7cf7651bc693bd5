"""Prepare the photograph collections the shipped natural priors are trained on, checksum-verified.

The images are not in this repository. Each collection is recorded in ``collections/<name>.json``: the public
repository and commit it comes from, the folder inside it, and every file with its SHA-256 and its split
(``train`` or ``val``: the validation images are held out of training and used to pick and measure priors).

Run::

    git clone https://github.com/cszn/DnCNN && git -C DnCNN checkout e93b278
    python -m restore_models.prepare bsd400 --source DnCNN --out data/bsd400
    git clone https://github.com/Magauiya/Extended_SURE && git -C Extended_SURE checkout 1bcec3b
    python -m restore_models.prepare cbsd432 --source Extended_SURE --out data/cbsd432

Provenance and terms: both are the Berkeley Segmentation Dataset (BSDS500) images, minus the 68 test images
reserved as BSD68/CBSD68 (``bsd400``: the 400 gray 180x180 crops DnCNN trains on; ``cbsd432``: the 432
colour 481x321 images FFDNet-style colour denoisers train on). The BSDS images come from the Corel collection
and are distributed by Berkeley for research use; neither repository states a licence for them. This project
does not redistribute them; it ships only network weights trained on them (see each model card).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

COLLECTIONS = Path(__file__).parent / "collections"


def manifest(name: str) -> dict:
    path = COLLECTIONS / f"{name}.json"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(COLLECTIONS.glob("*.json")))
        raise SystemExit(f"error: unknown collection '{name}'; known: {known}")
    return json.loads(path.read_text())


def prepare(name: str, source: str, out: str) -> dict[str, int]:
    """Copy and verify a collection from a checkout of its repository into ``out/train`` and ``out/val``."""
    info = manifest(name)
    folder = Path(source) / info["path"]
    if not folder.is_dir():
        raise SystemExit(f"error: '{folder}' does not exist; clone {info['repository']} at commit "
                         f"{info['commit'][:7]} and pass the clone as --source")
    counts = {"train": 0, "val": 0}
    for file, entry in sorted(info["files"].items()):
        data = (folder / file).read_bytes() if (folder / file).exists() else b""
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise SystemExit(f"error: '{folder / file}' is missing or differs from the recorded checksum; "
                             f"check out commit {info['commit'][:7]}")
        target = Path(out) / entry["split"]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / file, target / file)
        counts[entry["split"]] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="collection: " + ", ".join(p.stem for p in sorted(COLLECTIONS.glob("*.json"))))
    parser.add_argument("--source", required=True, help="checkout of the collection's repository")
    parser.add_argument("--out", required=True, help="output folder (train/ and val/ are created)")
    args = parser.parse_args()
    counts = prepare(args.name, args.source, args.out)
    print(f"{args.name}: {counts['train']} training and {counts['val']} validation images in "
          f"{os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
