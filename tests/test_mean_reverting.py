"""Mean-reverting diffusion: IR-SDE schedule/marginals/posterior, MRS and IR-SDE samplers, training (issue 7)."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import restore
from restore.errors import IncompatibleError, InvalidInputError, ShapeError
from restore.operators import Identity
from restore.priors.mean_reverting import (
    ConditionalUNetPrior, MeanRevertingGaussianPrior, MRSchedule, mr_to_eps, mr_to_v, mr_to_x0,
)
from restore.samplers.ir_sde import IRSDE
from restore.samplers.mrs import MRS, time_grid

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _problem(mu: torch.Tensor) -> restore.Problem:
    return restore.Problem(y=mu, operator=Identity())


def test_schedule_matches_code_conventions():
    s = MRSchedule(T=100, max_sigma=50)
    assert s.thetas.shape == (101,) and float(s.thetas_bar[0]) == 0.0
    assert float(s.alpha(100)) == pytest.approx(0.005, rel=1e-12)
    assert float(s.sigma_bar(0)) == 0.0 and s.lam == pytest.approx(50 / 255)
    # fractional times interpolate θ̄, so σ̄² = λ²(1 - α²) holds everywhere
    t = torch.tensor([0.5, 17.25, 99.9], dtype=torch.float64)
    assert torch.allclose(s.sigma_bar(t) ** 2, s.lam**2 * (1 - s.alpha(t) ** 2), atol=1e-15)


def test_closed_form_marginal_matches_euler_maruyama():
    """Forward SDE dx = θ(μ - x)dt + σ dw with σ² = 2λ²θ, fine Euler–Maruyama vs closed form (moments)."""
    s = MRSchedule(T=100, max_sigma=50)
    rng = np.random.default_rng(0)
    n, sub, t_end = 20000, 10, 30
    x0, mu = 0.9, 0.2
    x = np.full(n, x0)
    h = s.dt / sub
    for i in range(1, t_end + 1):  # on (i-1, i] θ̄ grows at rate θ_i dt: θ is piecewise constant
        th = float(s.thetas[i])
        sig = math.sqrt(2 * s.lam**2 * th * h)
        for _ in range(sub):
            x = x + th * (mu - x) * h + sig * rng.standard_normal(n)
    mean = mu + (x0 - mu) * float(s.alpha(t_end))
    var = float(s.sigma_bar(t_end)) ** 2
    assert abs(x.mean() - mean) < 4 * math.sqrt(var / n) + 0.01 * abs(mean - mu)  # + EM bias O(h)
    assert x.var() == pytest.approx(var, rel=0.05)


def test_posterior_is_gaussian_conditioning_of_the_joint():
    s = MRSchedule(T=100, max_sigma=30)
    g = torch.Generator().manual_seed(1)
    xt, x0, mu = (torch.rand(3, 1, 2, 2, generator=g, dtype=torch.float64) for _ in range(3))
    for t, r in ((40, 39), (40, 25), (1, 0)):
        mean, std = s.posterior(xt, x0, mu, t, r)
        a_r, a_t = float(s.alpha(r)), float(s.alpha(t))
        A = a_t / a_r
        v_r, v_t = float(s.sigma_bar(r)) ** 2, float(s.sigma_bar(t)) ** 2
        ref = mu + a_r * (x0 - mu) + A * v_r / v_t * (xt - mu - a_t * (x0 - mu))
        assert torch.allclose(mean, ref, atol=1e-13)
        assert float(std.flatten()[0]) ** 2 == pytest.approx(v_r - (A * v_r) ** 2 / v_t, abs=1e-14)


def test_conversions_round_trip():
    s = MRSchedule(T=100, max_sigma=70)
    g = torch.Generator().manual_seed(2)
    x0, mu, eps = (torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    t = 37.5
    a, sb, lam = float(s.alpha(t)), float(s.sigma_bar(t)), s.lam
    x = s.marginal(x0, mu, t, eps)
    # plugging the true noise returns x0 exactly, and every form maps back to the same (eps, x0)
    assert torch.allclose(mr_to_x0(eps, x, mu, a, sb, lam, "epsilon"), x0, atol=1e-12)
    v = mr_to_v(eps, x, mu, a, sb, lam, "epsilon")
    assert torch.allclose(v, a * lam * eps - sb / lam * (x0 - mu), atol=1e-12)
    for out, kind in ((eps, "epsilon"), (x0, "sample"), (v, "v_prediction")):
        assert torch.allclose(mr_to_eps(out, x, mu, a, sb, lam, kind), eps, atol=1e-12)
        assert torch.allclose(mr_to_x0(out, x, mu, a, sb, lam, kind), x0, atol=1e-12)
        assert torch.allclose(mr_to_v(out, x, mu, a, sb, lam, kind), v, atol=1e-12)
    with pytest.raises(InvalidInputError, match="prediction type"):
        mr_to_x0(eps, x, mu, a, sb, lam, "score")


def test_gaussian_fixture_noise_is_exact():
    """The fixture's ε* is -σ̄ × the score of the exact marginal N(μ + α(m0-μ), α²s0² + σ̄²)."""
    p = MeanRevertingGaussianPrior(m0=0.6, s0=0.15, T=100, max_sigma=50)
    x = torch.linspace(-0.5, 1.5, 7, dtype=torch.float64).reshape(7, 1, 1, 1).requires_grad_(True)
    mu = torch.full_like(x, 0.3)
    t = 20.0
    a, sb = float(p.schedule.alpha(t)), float(p.schedule.sigma_bar(t))
    c = a * a * 0.15**2 + sb * sb
    logp = -((x - 0.3 - a * (0.6 - 0.3)) ** 2 / (2 * c)).sum()
    (score,) = torch.autograd.grad(logp, x)
    assert torch.allclose(p.score(x.detach(), t, mu), score, atol=1e-12)


def _fixture_run(sampler, prior, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = (0.3 + 0.2 * torch.randn(n, 1, 2, 2, generator=g, dtype=torch.float64))
    xT = mu + prior.schedule.lam * torch.randn(mu.shape, generator=g, dtype=torch.float64)
    out = sampler.run(prior, _problem(mu), x_init=xT, generator=torch.Generator().manual_seed(seed + 1))
    times = out.extras["levels"]
    return out, prior.ode_map(xT, mu, times[0], times[-1])


@pytest.mark.parametrize("parameterization", ["data", "noise"])
def test_mrs_ode_convergence_order(parameterization):
    """ODE-1 converges at first order and ODE-2 at second order to the exact probability-flow map
    (uniform-λ grid down to t = 1, so every step is a solver step)."""
    prior = MeanRevertingGaussianPrior(m0=0.6, s0=0.15, T=100, max_sigma=50)
    steps = [20, 40, 80, 160]
    for order, expected in ((1, 1.0), (2, 2.0)):
        errs = []
        for n in steps:
            sampler = MRS(steps=n, order=order, parameterization=parameterization, time_schedule="linear-lambda",
                          t_min=1.0)
            out, exact = _fixture_run(sampler, prior)
            assert out.nfe == n
            errs.append(float((out.x - exact).abs().max()))
        slope = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
        assert abs(slope - expected) < 0.15, (order, parameterization, errs, slope)
    # the default grid (linspace to t = 0, final x̂_0 step) still converges to the exact map
    errs = [float((lambda o: (o[0].x - o[1]).abs().max())(_fixture_run(MRS(steps=n), prior))) for n in (20, 160)]
    assert errs[1] < errs[0] / 10


@pytest.mark.parametrize("steps", [100, 20])
def test_mrs_sde1_data_equals_irsde_posterior(steps):
    """SDE-1 in data form and the IR-SDE posterior sampler are the same update (shared noise)."""
    prior = MeanRevertingGaussianPrior(m0=0.6, s0=0.15, T=100, max_sigma=50)
    mu = torch.rand(4, 1, 3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a = MRS(steps=steps, solver="sde", order=1, parameterization="data", lambda_min=-math.inf)
    b = IRSDE(steps=steps, method="posterior")
    ra = a.run(prior, _problem(mu), generator=torch.Generator().manual_seed(5))
    rb = b.run(prior, _problem(mu), generator=torch.Generator().manual_seed(5))
    assert ra.extras["levels"] == [float(t) for t in rb.extras["levels"]]
    assert (ra.x - rb.x).abs().max() < 1e-12
    assert ra.nfe == rb.nfe == steps


def test_irsde_and_mrs_sde_sample_the_fixture():
    """IR-SDE (posterior, Euler) and MRS (SDE-2, ODE-2) reproduce N(m0, s0²) up to discretisation."""
    prior = MeanRevertingGaussianPrior(m0=0.6, s0=0.15, T=100, max_sigma=50)
    mu = torch.full((4000, 1, 1, 1), 0.2, dtype=torch.float64)
    for sampler in (IRSDE(steps=100), IRSDE(steps=100, method="euler"), MRS(steps=100, solver="sde"), MRS(steps=20)):
        x = sampler.run(prior, _problem(mu), generator=torch.Generator().manual_seed(7)).x
        assert float(x.mean()) == pytest.approx(0.6, abs=0.01), sampler.config
        assert float(x.std()) == pytest.approx(0.15, rel=0.07), sampler.config


def test_time_grids():
    s = MRSchedule(T=100, max_sigma=255)  # λ = 1: λ_T = log(0.005) < -5, so t_max is reduced
    g = time_grid(s, 10, -5.0, "linspace")
    assert g[-1] == 0.0 and g[0] < 100 and float(s.log_snr(g[0])) >= -5.0
    gl = time_grid(s, 10, -5.0, "linear-lambda")
    lam = s.log_snr(torch.tensor(gl[:-1], dtype=torch.float64)).numpy()
    assert gl[-1] == 0.0 and len(gl) == 11 and np.allclose(np.diff(lam), np.diff(lam)[0], atol=1e-8)


def test_mu_from_problem_resize_and_padding():
    y = torch.rand(1, 3, 8, 8)
    prior = MeanRevertingGaussianPrior()
    assert prior.bind(restore.Problem(y, Identity(), x_shape=(1, 3, 16, 16))).mu.shape == (1, 3, 16, 16)
    prior.multiple = 16  # the view pads x (and μ) to the network's size multiple
    view = prior.bind(restore.Problem(y, Identity()))
    mu = view.mu
    assert view.x_shape == (1, 3, 16, 16) and mu.shape == (1, 3, 16, 16)
    assert torch.equal(mu[..., :8, :8], y) and torch.equal(mu[..., 8, :8], y[..., 7, :])
    assert torch.equal(mu[..., :8, 8], y[..., :, 7])
    with pytest.raises(ShapeError, match="channels"):
        prior.bind(restore.Problem(y, Identity(), x_shape=(1, 1, 8, 8)))


def test_bad_inputs_give_clear_errors():
    mr = MeanRevertingGaussianPrior()
    vp = restore.prior("gaussian", mean=torch.zeros(4, dtype=torch.float64), cov=torch.eye(4, dtype=torch.float64))
    y = torch.rand(2, 4, dtype=torch.float64)
    with pytest.raises(IncompatibleError, match="needs a mean-reverting prior") as e:
        restore.sampler("mrs", steps=5).run(vp, _problem(y))
    assert "\n" not in str(e.value)
    with pytest.raises(IncompatibleError, match="needs a mean-reverting prior"):
        restore.sampler("ir-sde", steps=5).run(vp, _problem(y))
    with pytest.raises(IncompatibleError, match="mean-reverting") as e:
        restore.sampler("ddim", steps=5).run(mr, _problem(y.reshape(2, 1, 2, 2)))
    assert "\n" not in str(e.value)
    with pytest.raises(IncompatibleError, match="degraded image"):
        restore.sampler("mrs").run(mr, None, shape=(1, 1, 2, 2))
    with pytest.raises(InvalidInputError, match="order"):
        restore.sampler("mrs", order=3)
    with pytest.raises(InvalidInputError, match="at most"):
        IRSDE(steps=500).run(mr, _problem(y.reshape(2, 1, 2, 2)))
    with pytest.raises(ShapeError, match="mu"):
        mr.eps(torch.zeros(1, 1, 2, 2), 3, torch.zeros(1, 1, 4, 4))


def test_training_reduces_loss_and_saved_model_round_trips(tmp_path):
    from restore_models.mean_reverting import MRTrainConfig, build_conditional_unet, degrade, mr_loss, train

    torch.manual_seed(0)
    cfg = MRTrainConfig(task="denoise", crop=16, batch_size=4, block_out_channels=(8, 16), T=20).resolved()
    sched = MRSchedule(cfg.T, cfg.max_sigma, cfg.eps)
    net = build_conditional_unet(3, cfg.block_out_channels, 1, 16)
    x0 = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mu = degrade(x0, cfg, torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)

    def loss():
        return mr_loss(net, x0, mu, sched, torch.Generator().manual_seed(2))

    with torch.no_grad():
        before = float(loss())
    for _ in range(15):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    with torch.no_grad():
        after = float(loss())
    assert after < 0.8 * before

    run = tmp_path / "run"
    small = MRTrainConfig(task="denoise", crop=16, batch_size=2, block_out_channels=(8, 16), T=20, steps=2)
    summary = train(small, str(run))
    assert summary["steps"] == 2 and os.path.exists(summary["checkpoint"])
    resumed = train(MRTrainConfig(**{**small.__dict__, "steps": 3}), str(run), resume=summary["checkpoint"])
    assert resumed["steps"] == 3
    for f in ("config.json", "diffusion_pytorch_model.safetensors", "restore_prior.json", "MODEL_CARD.md"):
        assert (run / "model" / f).exists()

    loaded = restore.prior(str(run / "model"))
    assert isinstance(loaded, ConditionalUNetPrior) and loaded.kind == "mean-reverting"
    state = torch.load(resumed["checkpoint"], weights_only=False)
    ema = build_conditional_unet(3, (8, 16), 1, 16)
    ema.load_state_dict(state["ema"])
    direct = ConditionalUNetPrior(ema, MRSchedule(20, cfg.max_sigma, cfg.eps), "sample", residual=True)
    y = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    outs = [MRS(steps=4).run(p, _problem(y), generator=torch.Generator().manual_seed(9)).x for p in (loaded, direct)]
    # Loaded vs in-memory network: same weights, but float32 kernels may be chosen differently (~1e-6).
    assert float((outs[0] - outs[1]).abs().max() / outs[1].abs().max()) <= 1e-5
    again = MRS(steps=4).run(loaded, _problem(y), generator=torch.Generator().manual_seed(9)).x
    assert torch.equal(outs[0], again)


def test_fine_tuning_on_a_folder_starts_from_the_given_weights(tmp_path, capsys):
    from PIL import Image
    from safetensors.torch import load_file

    from restore.cli import main
    from restore_models.mean_reverting import MRTrainConfig, train

    data = tmp_path / "data" / "nested"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(data / f"im{i}.png")
    base = tmp_path / "base"
    train(MRTrainConfig(task="denoise", crop=16, batch_size=2, block_out_channels=(8, 16), T=20, steps=1), str(base))
    tuned = tmp_path / "tuned"
    # zero steps: the exported weights are the --init weights themselves, whatever --widths says
    assert main(["train", "mean-reverting", "--task", "denoise", "--data", str(data), "--init",
                 str(base), "-o", str(tuned), "--steps", "1", "--minutes", "0", "--crop", "16",
                 "--widths", "4,8"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    a = load_file(str(base / "model" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(tuned / "model" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    card = (tuned / "model" / "MODEL_CARD.md").read_text()
    assert "data/nested" in card and "Fine-tuned from" in card
    for args, expected in ((["--init", str(tmp_path / "nowhere")], "neither a shipped"),
                           (["--data", str(tmp_path / "nowhere")], "is not a folder")):
        assert main(["train", "mean-reverting", "--task", "denoise", "-o", str(tmp_path / "bad"), "--crop", "16"]
                    + args) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err
        assert not (tmp_path / "bad").exists()


def test_one_step_is_refused_on_the_grid_to_zero():
    # one step would return the network's x̂0 at the noisiest level (6.4 dB with mr-denoise-25)
    for name in ("mrs", "ir-sde"):
        with pytest.raises(restore.RestoreError, match="steps >= 2"):
            restore.sampler(name, steps=1)
    prior = MeanRevertingGaussianPrior(m0=0.6, s0=0.15, T=100, max_sigma=50)
    mu = torch.full((2, 1, 1, 1), 0.2, dtype=torch.float64)
    # stopping at a noise level is an ODE step, not the x̂0 jump: still allowed
    assert MRS(steps=1, t_min=1.0, time_schedule="linear-lambda").run(prior, _problem(mu)).nfe == 1


def test_a_trained_network_refuses_other_degradations_and_warns_on_another_noise(tmp_path, capsys):
    """mr-denoise-25 on a deblurring problem ran and wrote an image worse than its input (22.29 dB from 22.45):
    a network restores the degradation it was trained on."""
    from PIL import Image

    from restore.cli import main
    from restore_models.mean_reverting import MRTrainConfig, train

    train(MRTrainConfig(task="denoise", crop=16, batch_size=2, block_out_channels=(8, 16), T=20, steps=1),
          str(tmp_path / "run"))
    image = tmp_path / "im.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(image)
    common = ["--simulate", "--prior", str(tmp_path / "run" / "model"), "--sampler", "mrs", "--steps", "2", "-q"]
    for task, extra in (("deblur", ["--kernel", "gaussian:1"]), ("super-resolve", ["--scale", "2"])):
        out = tmp_path / f"{task}.png"
        assert main([task, str(image), *extra, *common, "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "trained for denoising" in err and "\n" not in err and not out.exists()
    assert main(["denoise", str(image), *common, "-o", str(tmp_path / "a.png")]) == 0
    assert "warning" not in capsys.readouterr().err
    # without --sampler the task's default (tweedie) cannot take this prior: its family's sampler runs
    no_sampler = [a for a in common if a not in ("--sampler", "mrs", "-q")]
    assert main(["denoise", str(image), *no_sampler, "-o", str(tmp_path / "c.png")]) == 0
    assert "sampler mrs" in capsys.readouterr().err  # the summary line goes to stderr
    assert main(["denoise", str(image), "--noise", "0.05", *common, "-o", str(tmp_path / "b.png")]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("warning: prior") and "trained for noise 0.0980" in err and "\n" not in err
