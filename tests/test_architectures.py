"""Published networks (restore_models.architectures) against their reference implementations.

Fixtures (tests/data/architectures/*.safetensors, see the README there) were made by running the official
reference code — openai/guided-diffusion, openai/consistency_models and yang-song/score_sde_pytorch at the
commits recorded in each file's "reference" metadata — on small configurations with random weights. Each
file holds the reference state dict (keys in reference order), the inputs and the reference outputs.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

import restore
from restore.errors import InvalidInputError
from restore_models.architectures.adm import ADMConfig, ADMUNet
from restore_models.architectures.checkpoint import fit_state
from restore_models.architectures.loading import build_prior, load_architecture_prior
from restore_models.architectures.networks import build_network
from restore_models.architectures.presets import PRESETS
from restore_models.architectures.prior import ArchitecturePrior
from restore_models.architectures.schedules import NoiseSchedule

DATA = Path(__file__).parent / "data" / "architectures"
FIXTURES = sorted(p.stem for p in DATA.glob("*.safetensors"))
# Same operations in the same order as the reference, but a different code path (einsum/conv dispatch may
# differ across machines): 1e-5 absolute on outputs of magnitude ~1 (VE scores reach ~40: relative there).
TOL = 1e-5


@pytest.fixture
def run_cli(capsys):
    from types import SimpleNamespace

    from restore.cli import main

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return SimpleNamespace(code=code, out=captured.out, err=captured.err)

    return run


def read_fixture(name: str):
    from safetensors import safe_open

    with safe_open(str(DATA / f"{name}.safetensors"), "pt") as f:
        meta = f.metadata()
        state = {k[len("state."):]: f.get_tensor(k) for k in f.keys() if k.startswith("state.")}
        io = {k[len("io."):]: f.get_tensor(k) for k in f.keys() if k.startswith("io.")}
    return meta, json.loads(meta["config"]), state, io


def adm_config(unet_kwargs: dict, new_order: bool | None = None) -> ADMConfig:
    """guided-diffusion ``UNetModel(**kwargs)`` → this package's ``create_model``-style config."""
    size = unet_kwargs["image_size"]
    return ADMConfig(
        image_size=size, num_channels=unet_kwargs["model_channels"], num_res_blocks=unet_kwargs["num_res_blocks"],
        attention_resolutions=[size // ds for ds in unet_kwargs["attention_resolutions"]],
        channel_mult=unet_kwargs["channel_mult"],
        learn_sigma=unet_kwargs["out_channels"] == 2 * unet_kwargs["in_channels"],
        class_cond=unet_kwargs["num_classes"] is not None, num_classes=unet_kwargs["num_classes"] or 1000,
        num_heads=unet_kwargs["num_heads"], num_head_channels=unet_kwargs["num_head_channels"],
        use_scale_shift_norm=unet_kwargs["use_scale_shift_norm"], resblock_updown=unet_kwargs["resblock_updown"],
        use_new_attention_order=unet_kwargs["use_new_attention_order"] if new_order is None else new_order,
        dropout=unet_kwargs["dropout"], in_channels=unet_kwargs["in_channels"])


def network_for(name: str):
    meta, cfg, state, io = read_fixture(name)
    if meta["architecture"] == "adm":
        # consistency models always split q/k/v before heads (their flash attention layout)
        net = ADMUNet(adm_config(cfg, new_order=True if name.startswith("cm_") else None))
    else:
        net = build_network(meta["architecture"], cfg)
    return net.eval(), meta, state, io


def cm_denoise(net, io, boundary=True):
    sched = NoiseSchedule(type="karras", sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, boundary_condition=boundary)
    sigma = io["sigma"]
    c_skip, c_out, c_in = (c[:, None, None, None] for c in sched.karras_scalings(sigma))
    raw = net(c_in * io["x"], 250 * torch.log(sigma + 1e-44), io["y"])
    return raw, c_skip * io["x"] + c_out * raw


def test_fixtures_present():
    assert {"adm_dps_small", "adm_classcond_fp16", "cm_small", "ncsnpp_ve_skip", "ncsnpp_ve_residual", "ddpmpp_vp",
            "ncsnpp_ddpmblocks_cat", "ddpm_vp"} <= set(FIXTURES)


@pytest.mark.parametrize("name", FIXTURES)
def test_reference_equivalence(name):
    net, meta, state, io = network_for(name)
    assert list(net.state_dict()) == json.loads(meta["keys"])  # same names in the same order (score-SDE EMA)
    net.load_state_dict(state, strict=True)
    with torch.no_grad():
        if name.startswith("cm_"):
            raw, out = cm_denoise(net, io)
            assert (raw - io["raw"]).abs().max() < TOL
        else:
            out = net(io["x"], io["t"], io["y"]) if "y" in io else net(io["x"], io["t"])
    scale = max(1.0, float(io["out"].abs().max()))
    assert (out - io["out"]).abs().max() < TOL * scale
    assert out.abs().max() > 0.1  # random weights everywhere: a zeroed layer would not pass unnoticed


def test_consistency_model_released_precision():
    """The released attention runs in float16; float32 here differs by float16 rounding only."""
    net, _, state, io = network_for("cm_small")
    net.load_state_dict(state)
    with torch.no_grad():
        _, out = cm_denoise(net, io)
    assert (out - io["out_fp16attn"]).abs().max() < 1e-2


def test_fp16_checkpoint_loads_into_float32():
    _, _, state, _ = read_fixture("adm_classcond_fp16")
    assert any(v.dtype == torch.float16 for v in state.values())  # stored as a use_fp16 checkpoint is


def test_class_conditional_run_unconditionally_drops_label_embedding():
    net, _, state, io = network_for("adm_classcond_fp16")
    net.load_state_dict(state)
    with torch.no_grad():
        uncond = net(io["x"], io["t"])
        net.label_emb.weight.zero_()  # a zero label embedding is the same as leaving it out
        zero_label = net(io["x"], io["t"], io["y"])
    assert (uncond - zero_label).abs().max() < TOL


# -- full-size published configurations -----------------------------------------------------------------
LAYOUTS = json.loads((DATA / "reference_layouts.json").read_text())


@pytest.mark.parametrize("preset,reference", [
    ("dps-ffhq-256", "dps-ffhq"), ("adm-imagenet-256-uncond", "adm-256-uncond"), ("adm-imagenet-256", "adm-256-cond"),
    ("adm-imagenet-128", "adm-128-cond"), ("adm-imagenet-64", "adm-64-cond")])
def test_preset_parameter_counts_match_reference(preset, reference):
    with torch.device("meta"):
        net = build_network("adm", PRESETS[preset]["config"])
    assert sum(p.numel() for p in net.parameters()) == LAYOUTS["parameter_counts"][reference]


def test_full_size_dps_ffhq_loads_reference_layout_by_file_name(tmp_path):
    keys = LAYOUTS["dps_ffhq_keys"]
    gen = torch.Generator().manual_seed(0)
    # float16 random weights keep the file small; the published one is float32 (loading casts either way)
    state = {k: (torch.randn(shape, generator=gen) * 0.02).half() for k, shape in keys}
    path = tmp_path / "ffhq_10m.pt"
    torch.save(state, path)
    del state
    prior = restore.prior(str(path))
    assert isinstance(prior, ArchitecturePrior)
    assert prior.parameter_count == LAYOUTS["parameter_counts"]["dps-ffhq"] == 93563910
    assert [k for k, _ in keys] == list(prior.network.state_dict())
    x = torch.zeros(1, 3, 32, 32)
    with torch.no_grad():
        eps = prior.eps(x, 500)
    assert eps.shape == x.shape and torch.isfinite(eps).all()


# -- schedules: closed forms --------------------------------------------------------------------------------
def test_adm_linear_and_cosine_schedules():
    lin = NoiseSchedule(type="linear").vp_schedule()
    assert lin.betas[0] == pytest.approx(1e-4) and lin.betas[-1] == pytest.approx(0.02)
    cos = NoiseSchedule(type="cosine").vp_schedule()
    f = lambda t: torch.cos(torch.tensor((t + 0.008) / 1.008 * torch.pi / 2, dtype=torch.float64)) ** 2  # noqa: E731
    assert float(cos.abar(499)) == pytest.approx(float(f(0.5) / f(0.0)), rel=1e-9)


def test_vp_sde_schedule_matches_marginal():
    s = NoiseSchedule(type="vp-sde", steps=1000, beta_min=0.1, beta_max=20.0)
    t = s.vp_times()
    expected = torch.exp(-0.5 * t ** 2 * 19.9 - 0.1 * t)
    assert torch.allclose(s.vp_schedule().alphas_cumprod, expected, rtol=1e-10)
    assert float(s.label(torch.tensor([999]))) == pytest.approx(999.0)


@pytest.mark.parametrize("kind", ["ve-sde", "karras"])
def test_ve_schedules_are_exact_vp_reparameterisations(kind):
    s = NoiseSchedule(type=kind, steps=50, sigma_min=0.01, sigma_max=80.0)
    vp = s.vp_schedule()
    sig = s.sigmas()
    k = torch.arange(50)
    assert torch.allclose(vp.s(k) / vp.a(k), sig, rtol=1e-8)
    assert float(sig[0]) == pytest.approx(0.01) and float(sig[-1]) == pytest.approx(80.0)


# -- priors against the exact Gaussian posterior -------------------------------------------------------------
TAU = 0.7  # x0 ~ N(0, TAU² I) in model space


class GaussianScoreNet(torch.nn.Module):
    """Returns, in the network's own convention, the exact prediction for x0 ~ N(0, TAU² I)."""

    def __init__(self, noise: NoiseSchedule, config) -> None:
        super().__init__()
        self.noise, self.config = noise, config
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.multiple = 1

    def forward(self, x, label, y=None):
        label = label.double()
        if self.noise.type == "karras":
            sigma = torch.exp(label / 250).reshape(-1, 1, 1, 1)
            c_skip, c_out, c_in = self.noise.karras_scalings(sigma)
            x_ve = x / c_in
            return (TAU ** 2 / (TAU ** 2 + sigma ** 2) * x_ve - c_skip * x_ve) / c_out
        if self.noise.type == "ve-sde":
            sigma = label.reshape(-1, 1, 1, 1)
            return -x / (TAU ** 2 + sigma ** 2)  # the score
        t = (label / 999).reshape(-1, 1, 1, 1)
        abar = torch.exp(-0.5 * t ** 2 * (self.noise.beta_max - self.noise.beta_min) - t * self.noise.beta_min)
        a, s = abar.sqrt(), (1 - abar).sqrt()
        return s * x / (a ** 2 * TAU ** 2 + s ** 2)  # E[eps | x]


@pytest.mark.parametrize("kind", ["vp-sde", "ve-sde", "karras"])
def test_prior_tweedie_matches_analytic_gaussian(kind):
    noise = NoiseSchedule(type=kind, steps=100, sigma_min=0.01, sigma_max=50.0)
    cfg = ADMConfig(image_size=8, num_channels=32, channel_mult=(1,))
    prior = ArchitecturePrior(GaussianScoreNet(noise, cfg), "adm", noise).double()
    d = 3 * 8 * 8
    oracle = restore.priors.analytic.GaussianPrior(torch.zeros(3, 8, 8, dtype=torch.float64),
                                                   TAU ** 2 * torch.eye(d, dtype=torch.float64),
                                                   schedule=prior.schedule, data_range=(-1.0, 1.0))
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # The network's time input is float32 (as the published code feeds it): 1e-6 covers that rounding.
    # A consistency model returns its input at sigma_min by construction (boundary condition), not Tweedie.
    for k in ((40, 99) if kind == "karras" else (0, 40, 99)):
        assert torch.allclose(prior.x0(x, k), oracle.x0(x, k), atol=1e-6)


def test_tiling_applies_to_large_images():
    class Pointwise(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = ADMConfig(image_size=8, num_channels=32, channel_mult=(1, 1))
            self.w = torch.nn.Parameter(torch.tensor(0.3))
            self.multiple = 2

        def forward(self, x, t, y=None):
            return x * self.w + t.reshape(-1, 1, 1, 1) / 1000

    prior = ArchitecturePrior(Pointwise(), "adm", NoiseSchedule(type="linear"))
    x = torch.randn(1, 3, 40, 36, generator=torch.Generator().manual_seed(1))
    whole = prior.eps(x, 10)
    prior.tile, prior.tile_overlap = 16, 4
    calls = []
    prior.network.register_forward_hook(lambda *a: calls.append(1))
    assert torch.allclose(prior.eps(x, 10), whole, atol=1e-6)  # pointwise network: blending is exact
    assert len(calls) > 1


# -- loading ------------------------------------------------------------------------------------------------------
def fixture_folder(tmp_path, name: str, schedule: dict, score_sde_format: bool = False) -> Path:
    meta, cfg, state, io = read_fixture(name)
    folder = tmp_path / name
    folder.mkdir()
    if score_sde_format:
        net = build_network(meta["architecture"], cfg)
        net.load_state_dict(state)
        trained = {n for n, p in net.named_parameters() if p.requires_grad}
        shadow = [p.detach().clone() for p in net.parameters() if p.requires_grad]
        # the raw weights are wrong on purpose: only the EMA (what score-SDE samples with) is right; the
        # fixed Fourier features and buffers are not in the EMA and come from the model state
        garbage = {f"module.{k}": torch.zeros_like(v) if k in trained else v for k, v in state.items()}
        torch.save({"model": garbage, "ema": {"decay": 0.999, "num_updates": 3, "shadow_params": shadow},
                    "optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "betas": (0.9, 0.999)}]}, "step": 7},
                   folder / "checkpoint_8.pth")
    else:
        torch.save(state, folder / "model.pt")
    (folder / "restore_prior.json").write_text(json.dumps(
        {"architecture": meta["architecture"], "config": cfg, "schedule": schedule}))
    return folder


def test_folder_score_sde_checkpoint_uses_ema(tmp_path):
    folder = fixture_folder(tmp_path, "ncsnpp_ve_skip", {"type": "ve-sde", "sigma_min": 0.01, "sigma_max": 50.0},
                            score_sde_format=True)
    prior = restore.prior(str(folder))
    _, _, _, io = read_fixture("ncsnpp_ve_skip")
    with torch.no_grad():
        out = prior.network(io["x"], io["t"])
    assert (out - io["out"]).abs().max() < TOL * float(io["out"].abs().max())


def test_ve_prior_eps_is_minus_sigma_times_score(tmp_path):
    folder = fixture_folder(tmp_path, "ncsnpp_ve_residual", {"type": "ve-sde", "sigma_min": 0.01, "sigma_max": 50.0,
                                                             "steps": 100})
    prior = restore.prior(str(folder))
    assert prior.channels == 1 and prior.data_range == (0.0, 1.0)
    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    k = 60
    sigma = float(prior.noise.sigmas()[k])
    with torch.no_grad():
        eps = prior.eps(x, k)
        score = prior.network(x * (1 + sigma ** 2) ** 0.5, torch.tensor([sigma], dtype=torch.float32))
    assert torch.allclose(eps, -sigma * score, atol=1e-5)


@pytest.mark.parametrize("sampler,operator", [("ddim", None), ("ddpm", None), ("tweedie", "denoising"),
                                              ("bdia", None), ("dps", "gaussian-blur"), ("dds", "gaussian-blur"),
                                              ("red-diff", "gaussian-blur"), ("stsl", "gaussian-blur"),
                                              ("code", "gaussian-blur")])
@pytest.mark.parametrize("family", ["vp-sde", "ve-sde"])
def test_samplers_run_on_published_architectures(tmp_path, sampler, operator, family):
    name = "ddpmpp_vp" if family == "vp-sde" else "ncsnpp_ve_skip"
    prior = str(fixture_folder(tmp_path, name, {"type": family, "steps": 100, "sigma_max": 50.0}))
    if sampler == "code" and family == "ve-sde":
        # CODE's Langevin steps at the lowest level follow the random network's (non-gradient) field
        # out of range; with the exact VE Gaussian score the same path must stay finite.
        noise = NoiseSchedule(type=family, steps=100, sigma_max=50.0)
        prior = ArchitecturePrior(GaussianScoreNet(noise, ADMConfig(image_size=8, num_channels=32, channel_mult=(1,))),
                                  "adm", noise)
    if operator is None:  # unconditional: a draw of the prior's shape
        x = restore.sampler(sampler, steps=3).run(restore.prior(prior) if isinstance(prior, str) else prior,
                                                  shape=(1, 3, 32, 32), generator=torch.Generator().manual_seed(0)).x
        assert x.shape == (1, 3, 32, 32) and torch.isfinite(x).all()
        return
    y = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    op = restore.operator(operator, **({"sigma": 1.0} if operator == "gaussian-blur" else {}))
    x = restore.solve(y, op, prior=prior, sampler=sampler, noise_sigma=0.05, seed=0, device="cpu",
                      **({} if sampler == "tweedie" else {"steps": 3}),
                      **({"langevin_steps": 20} if sampler == "code" else {}))
    assert x.shape == y.shape and torch.isfinite(x).all()


def test_learned_variance_lies_between_beta_tilde_and_beta():
    _, cfg, state, _ = read_fixture("adm_dps_small")
    net = ADMUNet(adm_config(cfg))
    net.load_state_dict(state)
    prior = ArchitecturePrior(net, "adm", NoiseSchedule(type="linear"))
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        logvar = prior.learned_log_variance(x, 300)
    b = prior.schedule.betas[300]
    tilde = b * (1 - prior.schedule.abar(299)) / (1 - prior.schedule.abar(300))
    v = prior.raw(x, torch.tensor([300]))[:, 3:]
    inside = (v.abs() <= 1)  # guided-diffusion interpolates for v in [-1, 1] (and extrapolates outside)
    assert (logvar[inside] <= float(b.log()) + 1e-6).all() and (logvar[inside] >= float(tilde.log()) - 1e-6).all()


# -- conversion ---------------------------------------------------------------------------------------------------
def test_convert_writes_safetensors_folder_that_loads(tmp_path, run_cli):
    src = fixture_folder(tmp_path, "adm_dps_small", {"type": "linear"})
    cfg = json.loads((src / "restore_prior.json").read_text())
    cfg["config"] = {k: v for k, v in adm_config(cfg["config"]).__dict__.items()}
    (src / "restore_prior.json").write_text(json.dumps(cfg))
    out = tmp_path / "converted"
    result = run_cli("convert", str(src), "-o", str(out))
    assert result.code == 0, result.err
    assert (out / "model.safetensors").is_file()
    meta = json.loads((out / "restore_prior.json").read_text())
    assert meta["architecture"] == "adm" and meta["parameters"] > 0 and meta["source"] == "model.pt"
    a, b = restore.prior(str(src)), restore.prior(str(out))
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert (a.eps(x, 100) - b.eps(x, 100)).abs().max() < TOL
    again = run_cli("convert", str(src), "-o", str(out))
    assert again.code == 2 and "already exists" in again.err and len(again.err.strip().splitlines()) == 1


# -- bad files: one line each -----------------------------------------------------------------------------------
def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_truncated_checkpoint(tmp_path):
    _, _, state, _ = read_fixture("adm_dps_small")
    full = tmp_path / "full.pt"
    torch.save(state, full)
    bad = tmp_path / "ffhq_10m.pt"
    bad.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InvalidInputError) as exc:
        load_architecture_prior(bad)
    assert "truncated" in one_line(exc)


def test_truncated_safetensors(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    raw = (DATA / "ddpm_vp.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(raw[: len(raw) // 3])
    (folder / "restore_prior.json").write_text(
        json.dumps({"architecture": "ddpm", "config": {}, "schedule": {"type": "linear"}}))
    with pytest.raises(InvalidInputError) as exc:
        restore.prior(str(folder))
    assert "truncated" in one_line(exc)


def test_wrong_architecture_names_first_missing_and_unexpected_keys(tmp_path):
    _, _, state, _ = read_fixture("ncsnpp_ve_skip")
    _, cfg, _, _ = read_fixture("adm_dps_small")
    net = ADMUNet(adm_config(cfg))
    with pytest.raises(InvalidInputError) as exc:
        fit_state(net, state, None, "x.pt", "adm")
    msg = one_line(exc)
    assert "missing keys (first 'time_embed.0.weight')" in msg and "unexpected keys (first 'all_modules.0.W')" in msg


def test_wrong_width_names_the_tensor(tmp_path):
    _, cfg, state, _ = read_fixture("adm_dps_small")
    net = ADMUNet(adm_config({**cfg, "model_channels": 64}))
    with pytest.raises(InvalidInputError) as exc:
        fit_state(net, state, None, "x.pt", "adm")
    assert "'time_embed.0.weight' has shape" in one_line(exc)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_needing_code_execution_is_refused_not_run(tmp_path, run_cli):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    path = tmp_path / "ffhq_10m.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": payload}, f)
    with pytest.raises(InvalidInputError) as exc:
        load_architecture_prior(path)
    assert "arbitrary" in one_line(exc) and "weights_only=False" in str(exc.value)
    assert not marker.exists()
    result = run_cli("convert", str(path), "-o", str(tmp_path / "out"))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and not marker.exists()
    assert not (tmp_path / "out").exists()


def test_unknown_file_name_says_how_to_describe_it(tmp_path):
    path = tmp_path / "my_model.pt"
    torch.save({"w": torch.zeros(1)}, path)
    with pytest.raises(InvalidInputError) as exc:
        restore.prior(str(path))
    assert "restore_prior.json" in one_line(exc)


def test_unknown_config_key_is_refused(tmp_path):
    with pytest.raises(InvalidInputError) as exc:
        build_prior({"architecture": "adm", "config": {"image_size": 64, "num_chanels": 3},
                     "schedule": {"type": "linear"}})
    assert "num_chanels" in one_line(exc)


def test_list_priors_shows_parameters_and_seconds(monkeypatch, run_cli):
    from restore_models.architectures import cost

    monkeypatch.setattr(cost, "estimate",
                        lambda arch, cfg: {"parameters": 93563910, "gflops": 1.0, "seconds_per_call": 4.2})
    result = run_cli("list", "priors")
    assert result.code == 0
    line = next(l for l in result.out.splitlines() if l.strip().startswith("dps-ffhq-256"))
    assert "93.6M" in line and "4.2" in line


def test_cost_estimate_counts_parameters(tmp_path, monkeypatch):
    from restore_models.architectures import cost

    monkeypatch.setattr(cost, "CACHE", tmp_path / "costs.json")
    config = dict(image_size=16, num_channels=32, channel_mult=[1, 2], attention_resolutions=[8])
    est = cost.estimate("adm", config)
    assert est["parameters"] == sum(p.numel() for p in build_network("adm", config).parameters())
    assert est["gflops"] > 0 and est["seconds_per_call"] > 0
    assert json.loads((tmp_path / "costs.json").read_text())  # cached for the next listing


@pytest.mark.parametrize("name", ["ncsnpp_ve_skip", "ddpm_vp"])
def test_score_sde_networks_run_at_other_sizes(name):
    """Attention stays at its training-size level on larger inputs (tiles, padded photos)."""
    net, _, state, io = network_for(name)
    net.load_state_dict(state)
    x = torch.randn(1, io["x"].shape[1], 64, 48, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        out = net(x, io["t"][:1])
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_cli_prior_by_checkpoint_file_next_to_its_description(tmp_path, run_cli):
    import numpy as np
    from PIL import Image

    folder = fixture_folder(tmp_path, "ddpmpp_vp", {"type": "vp-sde"})
    img = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / "out.png"
    result = run_cli("deblur", img, "-o", out, "--prior", folder / "model.pt", "--sampler", "dps", "--steps", "2",
                     "--kernel", "gaussian:1.0")
    assert result.code == 0, result.err
    assert out.is_file()


def test_float16_torso_matches_float32_to_half_precision():
    """use_fp16 as published (convolutions of the torso in float16, norms and softmax in float32)."""
    net, _, state, io = network_for("adm_dps_small")
    net.load_state_dict(state)
    with torch.no_grad():
        ref = net(io["x"], io["t"])
        out = net.half_torso()(io["x"], io["t"])
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 1e-2 * ref.abs().max()  # float16 has 11 significant bits


def test_discrete_ve_labels_index_the_networks_sigmas():
    _, cfg, state, _ = read_fixture("ncsnpp_ve_skip")  # sigma_max 50, 100 scales
    cfg = {**cfg, "model": {**cfg["model"], "embedding_type": "positional"}}
    net = build_network("ncsnpp", cfg)
    with pytest.raises(InvalidInputError):
        ArchitecturePrior(net, "ncsnpp", NoiseSchedule(type="ve-sde", continuous=False, steps=1000, sigma_max=50.0))
    noise = NoiseSchedule(type="ve-sde", continuous=False, steps=100, sigma_max=50.0)
    prior = ArchitecturePrior(net, "ncsnpp", noise)
    k = torch.tensor([0, 37, 99])
    # level k (k-th smallest σ) is the network's buffer entry T-1-k (score-SDE stores σ from largest down)
    assert torch.allclose(net.sigmas[noise.label(k).long()], noise.sigmas()[k], rtol=1e-12)
    assert prior.noise is noise
