"""restore batch: local vs Dask equality, kill + resume, failures, parts, manifest, seeds."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from restore.batch import dask_message, expand_inputs, item_seed, read_records, run_batch, select_part
from restore.errors import InvalidInputError, OutputExistsError
from restore.tasks import RunSettings

SETTINGS = dict(prior="stationary-gaussian", steps=3, device="cpu", seed=7)
RESTORE = str(Path(sys.executable).with_name("restore"))


def cut_images(folder: Path, n: int = 6, size: int = 32) -> list[Path]:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    a = data.astronaut()
    paths = []
    for i in range(n):
        r, c = divmod(i, 3)
        path = folder / f"img{i}.png"
        Image.fromarray(a[100 + size * r: 100 + size * (r + 1), 180 + size * c: 180 + size * (c + 1)]).save(path)
        paths.append(path)
    return paths


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_deblur.png"))}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    cut_images(folder)
    return folder


@pytest.fixture(scope="module")
def reference(images, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference")
    result = run_batch([str(images)], "deblur", str(out), settings=RunSettings(**SETTINGS))
    assert result.ok and len(result.records) == 6
    return outputs(out)


def test_local_and_dask_localcluster_give_identical_outputs(images, reference, tmp_path):
    pytest.importorskip("distributed")
    result = run_batch([str(images / "*.png")], "deblur", str(tmp_path), settings=RunSettings(**SETTINGS),
                       engine="dask", workers=2)
    assert result.ok and result.workers == 2
    assert outputs(tmp_path) == reference
    records = list(read_records(str(tmp_path)))
    assert {r["engine"] for r in records} == {"dask"} and len(records) == 6
    assert len({r["worker"] for r in records}) >= 1 and all(str(os.getpid()) not in r["worker"] for r in records)


def test_local_process_pool_gives_identical_outputs(images, reference, tmp_path):
    result = run_batch([str(images)], "deblur", str(tmp_path), settings=RunSettings(**SETTINGS), workers=2)
    assert result.ok and result.workers == 2
    assert outputs(tmp_path) == reference
    assert len({r["worker"] for r in read_records(str(tmp_path))} - {f"{os.uname().nodename}:{os.getpid()}"}) >= 1


def test_kill_then_resume_is_byte_identical_and_never_partial(images, tmp_path):
    steps = 60  # slow enough per item to be killed mid-run
    ref_dir, out = tmp_path / "ref", tmp_path / "out"
    settings = RunSettings(**{**SETTINGS, "steps": steps})
    assert run_batch([str(images)], "deblur", str(ref_dir), settings=settings).ok
    reference = outputs(ref_dir)
    cmd = [RESTORE, "batch", str(images), "--task", "deblur", "-o", str(out), "--prior", "stationary-gaussian",
           "--steps", str(steps), "--device", "cpu", "--seed", "7", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest = out / "manifest.jsonl"
    seen_complete, deadline = set(), time.time() + 600  # generous: a loaded machine starts slowly
    while time.time() < deadline and proc.poll() is None:
        for name, data in outputs(out).items() if out.exists() else ():
            assert data == reference[name], f"{name} exists under its final name but is incomplete"
            seen_complete.add(name)
        if manifest.exists() and manifest.read_text().count('"status": "done"') >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    done_before = outputs(out)
    assert 2 <= len(done_before) < 6
    assert all(done_before[n] == reference[n] for n in done_before)

    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert outputs(out) == reference
    assert not [p for p in out.iterdir() if ".partial" in p.name]
    last = {}
    for r in read_records(str(out)):
        last[os.path.basename(r["input"])] = r["status"]
    assert sorted(last) == [f"img{i}.png" for i in range(6)]
    assert sum(s == "skipped" for s in last.values()) >= 2 and set(last.values()) <= {"done", "skipped"}


def test_corrupt_input_is_recorded_retried_and_does_not_stop_the_others(images, reference, tmp_path):
    from restore.cli import main

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("img0.png", "img1.png"):
        (inputs / name).write_bytes((images / name).read_bytes())
    (inputs / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    out = tmp_path / "out"
    code = main(["batch", str(inputs), "--task", "deblur", "-o", str(out), "--prior", "stationary-gaussian",
                 "--steps", "3", "--device", "cpu", "--seed", "7", "--retries", "1", "-q"])
    assert code == 1
    assert outputs(out) == {k: reference[k] for k in ("img0_deblur.png", "img1_deblur.png")}
    assert not (out / "bad_deblur.png").exists()
    bad = [r for r in read_records(str(out)) if r["input"].endswith("bad.png")]
    assert [r["attempt"] for r in bad] == [1, 2] and all(r["status"] == "failed" for r in bad)
    assert "bad.png" in bad[-1]["error"] and "InvalidInputError" in bad[-1]["error"]
    assert [r["final"] for r in bad] == [False, True]


def test_parts_are_disjoint_cover_everything_and_match_one_run(images, reference, tmp_path):
    paths = expand_inputs([str(images)])
    parts = [select_part(paths, 2, k) for k in (0, 1)]
    assert not set(parts[0]) & set(parts[1]) and sorted(parts[0] + parts[1]) == paths
    done = []
    for k in (0, 1):
        result = run_batch([str(images)], "deblur", str(tmp_path), settings=RunSettings(**SETTINGS),
                           num_parts=2, part_id=k)
        assert result.ok
        done.append({os.path.basename(r["input"]) for r in result.records})
    assert done[0].isdisjoint(done[1]) and len(done[0] | done[1]) == 6
    assert outputs(tmp_path) == reference  # per-input seeds do not depend on the split
    assert sorted(p.name for p in tmp_path.glob("manifest*.jsonl")) == [
        "manifest.part0-of-2.jsonl", "manifest.part1-of-2.jsonl"]
    with pytest.raises(InvalidInputError, match="--part-id must be in"):
        select_part(paths, 2, 2)


def test_resume_skips_only_same_config_and_existing_outputs_need_a_flag(images, reference, tmp_path):
    one = [str(images / "img0.png"), str(images / "img1.png")]
    assert run_batch(one, "deblur", str(tmp_path), settings=RunSettings(**SETTINGS)).ok
    with pytest.raises(OutputExistsError, match="--resume"):
        run_batch(one, "deblur", str(tmp_path), settings=RunSettings(**SETTINGS))
    again = run_batch(one, "deblur", str(tmp_path), settings=RunSettings(**SETTINGS), resume=True)
    assert [r["status"] for r in again.records] == ["skipped", "skipped"]
    changed = run_batch(one, "deblur", str(tmp_path), settings=RunSettings(**{**SETTINGS, "steps": 4}),
                        resume=True)
    assert [r["status"] for r in changed.records] == ["done", "done"]
    assert changed.records[0]["config_hash"] != again.records[0]["config_hash"]
    hashes = [json.loads(line)["config_hash"] for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(hashes) == 6


def test_task_options_are_typed_and_checked(images, tmp_path):
    from restore.cli import main

    with pytest.raises(InvalidInputError, match="has no option 'kernal'.*kernel"):
        run_batch([str(images)], "deblur", str(tmp_path), options={"kernal": "gaussian:2"},
                  settings=RunSettings(**SETTINGS))
    assert main(["batch", str(images / "img0.png"), "--task", "deblur", "--opt", "kernel", "-o", str(tmp_path)]) == 2
    assert main(["batch", str(tmp_path / "nothing*.png"), "--task", "deblur", "-o", str(tmp_path)]) == 2
    result = run_batch([str(images / "img0.png")], "deblur", str(tmp_path), options={"kernel": "gaussian:1.0"},
                       settings=RunSettings(**SETTINGS))
    assert result.ok


def test_item_seed_depends_on_run_seed_and_file_name_only():
    assert item_seed(0, "/a/x.png") == item_seed(0, "/elsewhere/x.png")
    assert item_seed(0, "x.png") != item_seed(1, "x.png") != item_seed(1, "y.png")
    assert 0 <= item_seed(123, "x.png") < 2**63


def test_missing_dask_message_names_the_extra():
    assert dask_message() == ""  # installed in the test environment
    message = dask_message("distributed_not_installed_here")
    assert "pip install 'restore[dask]'" in message and "distributed_not_installed_here" in message
