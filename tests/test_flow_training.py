"""``restore train prior --objective flow`` and ``--reflow`` (issue 18): tiny runs, exact resume, load, sample."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

import restore
from restore.cli import main
from restore.priors.flow import FlowUNetPrior

from test_training import WIDTHS, _write_images


def _weights(run):
    return load_file(str(run / "unet" / "diffusion_pytorch_model.safetensors"))


def test_flow_matching_run_resumes_exactly_and_loads_as_a_flow_prior(tmp_path, capsys):
    data = _write_images(tmp_path / "data")
    straight, split = tmp_path / "straight", tmp_path / "split"
    flow = ["--objective", "flow"]
    val = ["--val", str(data), "--checkpoint-minutes", "0"]  # validation at every step: no effect on training
    assert main(["train", "prior", "--data", str(data), "-o", str(straight), "--steps", "4"] + WIDTHS + flow + val) \
        == 0, capsys.readouterr().err
    assert main(["train", "prior", "--data", str(data), "-o", str(split), "--steps", "2"] + WIDTHS + flow) == 0
    assert main(["train", "prior", "--resume", str(split), "--steps", "4"]) == 0
    a, b = _weights(straight), _weights(split)
    # same code path, same seeds, one thread, float32: the interrupted run continues bit for bit
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (straight / "scheduler").exists()
    psnrs = [float(line.split(",")[2]) for line in (straight / "val.csv").read_text().splitlines()[1:]]
    assert len(psnrs) >= 4 and all(0 < p < 100 for p in psnrs)  # the flow Tweedie estimate, logged
    prior = restore.prior(str(straight), device="cpu")
    assert isinstance(prior, FlowUNetPrior) and prior.channels == 1 and prior.kind == "flow"
    gen = torch.Generator().manual_seed(0)
    r = restore.sampler("flow-euler", steps=3).run(prior, shape=(1, 1, 16, 16), generator=gen)
    assert r.nfe == 3 and bool(torch.isfinite(r.x).all())
    # the eps run on the same data and seed differs: the objective is really switched
    eps = tmp_path / "eps"
    assert main(["train", "prior", "--data", str(data), "-o", str(eps), "--steps", "4"] + WIDTHS) == 0
    assert any(not torch.equal(a[k], v) for k, v in _weights(eps).items())


def test_reflow_trains_on_the_teacher_pairs_and_needs_a_flow_init(tmp_path, capsys):
    data = _write_images(tmp_path / "data")
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    flow = ["--objective", "flow"]
    assert main(["train", "prior", "--data", str(data), "-o", str(teacher), "--steps", "2"] + WIDTHS + flow) == 0
    assert main(["train", "prior", "--data", str(data), "-o", str(student), "--steps", "2", "--init", str(teacher),
                 "--reflow", "--reflow-steps", "2"] + WIDTHS + flow) == 0, capsys.readouterr().err
    assert isinstance(restore.prior(str(student), device="cpu"), FlowUNetPrior)
    capsys.readouterr()
    assert main(["train", "prior", "--data", str(data), "-o", str(tmp_path / "bad"), "--reflow"] + WIDTHS) == 2
    err = capsys.readouterr().err.strip()
    assert "--reflow needs --objective flow" in err and "\n" not in err
    assert not (tmp_path / "bad").exists()
