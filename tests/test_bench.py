"""The benchmark harness runs end to end on one image, one task, a few steps (no timing asserted)."""
from __future__ import annotations

import json

from bench.run import main, summarise


def test_smoke_suite_writes_json_table_and_plot(tmp_path, capsys):
    out = tmp_path / "smoke.json"
    assert main(["--suite", "smoke", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    methods = {r["method"] for r in data["runs"]}
    assert {"dds", "wiener", "input"} <= methods and data["machine"]["cores"]
    dds = next(r for r in data["runs"] if r["method"] == "dds")
    assert dds["nfe"] == 3 and dds["psnr"] > 0 and (dds["peak_mb"] is None or dds["peak_mb"] > 0)
    assert (tmp_path / "smoke.md").read_text().startswith("Suite `smoke`")
    assert (tmp_path / "smoke_deblur-gaussian.png").exists()
    best = summarise(data)
    assert len({(r["case"], r["method"]) for r in best}) == len(best)
    row = next(o for o in data["overhead"] if o.get("ratio"))
    assert row["network_in_run_s"] > 0 and 0 <= row["engine_share"] < 1  # the network was timed inside the run
    assert data["priors"]["natural-rgb"]["fingerprint"] and data["priors"]["natural-rgb"]["training_steps"] > 0


def test_an_interrupted_suite_resumes_from_its_progress_file(tmp_path):
    from bench.run import run_suite

    progress = str(tmp_path / "smoke.progress.jsonl")
    first = run_suite("smoke", progress_path=progress)
    logged = []
    again = run_suite("smoke", progress_path=progress, log=logged.append)
    assert any("from" in line for line in logged) and not any("PSNR" in line for line in logged)
    assert [r["psnr"] for r in again["runs"]] == [r["psnr"] for r in first["runs"]]


def test_stale_compares_weights_when_recorded_and_dates_otherwise(tmp_path):
    from bench.stale import status

    now = {"natural-gray": "aaa", "natural-rgb": "bbb"}
    shipped = {"natural-gray": 1_800_000_000.0, "natural-rgb": 1_700_000_000.0}  # natural-gray re-shipped later
    path = str(tmp_path / "never_committed.json")
    recorded = {"machine": {"weights": {"natural-gray": "old", "natural-rgb": "bbb"}}, "prior": "natural-gray"}
    assert status(recorded, path, now, shipped) == ("stale", "natural-gray re-shipped")
    assert status({**recorded, "prior": "natural-rgb"}, path, now, shipped) == ("current", "")
    assert status({"machine": recorded["machine"]}, path, now, shipped) == ("no prior", "")
    # older records: no weights, only the measurement date (2026-11-29 is after 1.7e9 s and before 1.8e9 s)
    dated = {"machine": {"date": "2026-11-29 14:00 UTC"}, "runs": [{"prior": "natural-gray"}]}
    assert status(dated, path, now, shipped) == ("stale", "natural-gray re-shipped after its date")
    assert status({**dated, "runs": [{"prior": "natural-rgb"}]}, path, now, shipped) == ("unknown", "")
    assert status({"runs": [{"prior": "natural-gray"}]}, path, now, shipped) == ("unknown", "")  # no date, no commit
    kept = {**recorded, "historical": "the before/after record of one change"}
    assert status(kept, path, now, shipped) == ("historical", "the before/after record of one change")
    assert status({**kept, "prior": "natural-rgb"}, path, now, shipped) == ("current", "")
