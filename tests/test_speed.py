"""Speed options (issue 23): network precision, batched posterior samples, quality presets, --threads."""
from __future__ import annotations

import pytest
import torch

import restore
from restore.metrics import psnr
from restore.plan import ChainGenerators, chain_seed, execute_plan, make_plan, quality_preset
from restore.problem import Problem
from restore.testing import tiny_unet_prior


def blur_problem(size=16, channels=1, noise=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, size, size, generator=g)
    op = restore.operator("gaussian-blur", sigma=1.5)
    y = op(x) + noise * torch.randn(x.shape, generator=g)
    return x, Problem(y, op, restore.GaussianNoise(noise))


def test_chain_generators_give_each_chain_its_own_stream():
    seeds = [chain_seed(7, i) for i in range(3)]
    draw = ChainGenerators(seeds).randn((6, 1, 4, 4), torch.float32)
    for i, s in enumerate(seeds):
        alone = torch.randn((2, 1, 4, 4), generator=torch.Generator().manual_seed(s))
        assert torch.equal(draw[2 * i:2 * i + 2], alone)
    assert chain_seed(7, 1) == chain_seed(8, 0) and chain_seed(7, 0) != 7  # not the simulation's stream


@pytest.mark.parametrize("sampler", ["dds", "pnp-hqs", "diffpir"])
def test_batched_samples_equal_single_runs(sampler):
    prior = tiny_unet_prior()
    _, problem = blur_problem()
    plan = make_plan(sampler, prior="tiny", steps=4, noise=0.01, seed=3, samples=4, channels=1)
    batched = execute_plan(plan, problem, prior)
    assert batched.nfe == 4  # the four chains share each network call
    for i in range(4):
        single = make_plan(sampler, prior="tiny", steps=4, noise=0.01, seed=3 + i, samples=1, channels=1)
        alone = execute_plan(single, problem, prior).draws[0]
        # batched vs single convolutions differ only by float32 reassociation
        assert (batched.draws[i] - alone).abs().max() <= 1e-5


def test_batch_size_bounds_chains_per_call():
    prior = tiny_unet_prior()
    _, problem = blur_problem()
    full = execute_plan(make_plan("dds", prior="tiny", steps=3, seed=1, samples=4, channels=1), problem, prior)
    bounded = execute_plan(make_plan("dds", prior="tiny", steps=3, seed=1, samples=4, channels=1, batch_size=3),
                           problem, prior)
    assert bounded.nfe == 6  # a group of 3 chains and a group of 1
    assert (full.draws - bounded.draws).abs().max() <= 1e-5  # reassociation only
    with pytest.raises(restore.RestoreError, match="batch size"):
        make_plan("dds", prior="tiny", samples=2, channels=1, batch_size=0)


@pytest.mark.filterwarnings("ignore:this CPU has no native bfloat16")
def test_bf16_runs_the_network_only_and_is_deterministic():
    prior = tiny_unet_prior().set_speed(precision="bf16", channels_last=True)
    _, problem = blur_problem()
    seen = []
    unet_forward = prior.unet.forward

    def spy(x, k, **kw):
        out = unet_forward(x, k, **kw)
        seen.append((x.dtype, out[0].dtype, torch.is_autocast_cpu_enabled()))
        return out

    prior.unet.forward = spy
    op_normal = problem.operator.normal
    cg_dtypes = []
    problem.operator.normal = lambda v: (cg_dtypes.append(v.dtype), op_normal(v))[1]
    plan = make_plan("dds", prior="tiny", steps=3, noise=0.01, seed=0, channels=1)
    a = execute_plan(plan, problem, prior).draws
    b = execute_plan(plan, problem, prior).draws
    assert torch.equal(a, b)  # same seed and precision, same output
    assert a.dtype == torch.float32 and set(cg_dtypes) == {torch.float32}
    assert seen and all(x == torch.float32 and out == torch.bfloat16 and autocast for x, out, autocast in seen)
    eps = prior.eps(torch.randn(1, 1, 16, 16), 500)
    assert eps.dtype == torch.float32 and not torch.is_autocast_cpu_enabled()


def test_auto_precision_resolves_per_device(monkeypatch):
    from restore.priors.diffusers_prior import resolve_precision

    prior = tiny_unet_prior().set_speed(precision="auto")
    # bf16 only where the CPU computes it in hardware: emulated bf16 is slower than float32
    for avx512_bf16, amx, expected in ((True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert resolve_precision("auto", torch.device("cpu")) == expected
    assert prior._channels_last
    assert prior.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert not tiny_unet_prior().set_speed(precision="fp32")._channels_last


def test_forced_bf16_on_a_cpu_that_emulates_it_warns_once(monkeypatch):
    import warnings

    from restore.priors.diffusers_prior import _warn_emulated_bf16

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native, expected in ((True, 0), (False, 1)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=native: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        _warn_emulated_bf16.cache_clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                tiny_unet_prior().set_speed(precision="bf16")
            tiny_unet_prior().set_speed(precision="auto")
        messages = [str(w.message) for w in caught if "bfloat16" in str(w.message)]
        assert len(messages) == expected and all("use --precision auto or fp32" in m for m in messages)


def test_compile_matches_eager():
    prior = tiny_unet_prior()
    x, k = torch.randn(2, 1, 16, 16), torch.tensor([300, 300])
    with torch.no_grad():
        eager = prior.eps(x, k)
        frozen = prior.set_speed(compile=True).eps(x, k)
    assert (eager - frozen).abs().max() <= 1e-4  # fused conv kernels reassociate


def test_precision_option_and_analytic_priors():
    with pytest.raises(restore.RestoreError, match="precision must be one of"):
        restore.prior("stationary-gaussian", channels=1, precision="fp8")
    analytic = restore.prior("stationary-gaussian", channels=1, precision="bf16")  # ignored, no network
    assert analytic is not None


def test_bf16_psnr_matches_fp32_on_a_shipped_prior():
    names = {c.name for c in restore.components("prior")}
    if "natural-gray" not in names:
        pytest.skip("the shipped natural-gray prior is not installed")
    from skimage import data

    clean = torch.from_numpy(data.camera()[128:192, 192:256].copy()).float().div(255)[None, None]
    op = restore.operator("gaussian-blur", sigma=1.5)
    y = op(clean) + 0.01 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    out = {p: restore.solve(y, op, prior="natural-gray", noise_sigma=0.01, steps=10, seed=0, device="cpu",
                            precision=p, gamma_rule="snr") for p in ("fp32", "bf16")}
    assert abs(psnr(out["bf16"], clean) - psnr(out["fp32"], clean)) <= 0.05


def test_quality_presets():
    from restore.tasks import get_task

    sr = get_task("super-resolve")
    default = sr.default_sampler
    name, preset = quality_preset(sr, "draft", None)
    assert name == default and preset["steps"] <= sr.sampler_defaults[default]["steps"] / 3
    assert quality_preset(sr, "default", None) == (default, {})
    assert quality_preset(sr, "draft", "dps") == ("dps", {})  # a preset for another sampler is not applied
    deblur = get_task("deblur")  # its measured draft is another, cheaper sampler
    assert quality_preset(deblur, "draft", None) == ("pnp-hqs", {"steps": 8})
    denoise = get_task("denoise")  # Tweedie has no steps: its draft is one network call instead of the x8 average
    assert denoise.sampler_defaults["tweedie"]["transforms"] == 8
    assert quality_preset(denoise, "draft", None) == ("tweedie", {"transforms": 1})
    enhance = get_task("enhance")  # no table of its own: a fifth of the sampler's default steps
    name, preset = quality_preset(enhance, "draft", None)
    assert name == enhance.default_sampler
    with pytest.raises(restore.RestoreError, match="--quality must be one of"):
        quality_preset(sr, "fast", None)


def _default_plan(task_name: str, noise: float, **options):
    """What ``restore TASK`` plans without ``--sampler`` for a 32² image built with ``options`` (a task option
    such as ``kernel``), plus any ``RunSettings`` given as ``settings``."""
    import restore
    from restore.plan import plan_task
    from restore.tasks import RunSettings, get_task

    task = get_task(task_name)
    image = restore.Image(torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)))
    settings = options.pop("settings", {})
    setup = task.build(image=image, noise=noise, simulate=True, generator=torch.Generator().manual_seed(0), **options)
    return plan_task(task, RunSettings(prior="stationary-gaussian", device="cpu", **settings), {}, setup, channels=1)


def test_deblur_default_depends_on_the_kernel_kind():
    from restore_imaging.tasks import DDS_IMAGING, GAUSSIAN_DEBLUR_DEFAULT, TASK_DEFAULTS

    def plan(kernel, **settings):
        return _default_plan("deblur", 0.01, kernel=kernel, settings=settings)

    gaussian, motion = plan("gaussian:2.0"), plan("motion:9:30")
    assert (gaussian.sampler, gaussian.sampler_config["steps"]) == GAUSSIAN_DEBLUR_DEFAULT
    assert (motion.sampler, motion.sampler_config["steps"]) == TASK_DEFAULTS["deblur"]
    assert plan("gaussian:2.0", sampler="dds").sampler == "dds"  # --sampler wins
    dds = plan("motion:9:30", sampler="dds").sampler_config  # the task's measured DDS options reach the sampler
    assert {k: dds[k] for k in DDS_IMAGING["dds"]} == DDS_IMAGING["dds"] and dds["steps"] == 50
    # a preset made for another sampler is not applied: --quality best on a Gaussian kernel keeps pnp-hqs
    assert plan("gaussian:2.0", quality="best").sampler == GAUSSIAN_DEBLUR_DEFAULT[0]
    assert plan("motion:9:30", quality="draft").sampler == "pnp-hqs"


def test_cli_speed_options(tmp_path):
    from restore.cli import main
    from restore.io import Image, write

    src = tmp_path / "in.png"
    write(str(src), Image(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))))
    common = [str(src), "--prior", "stationary-gaussian", "--steps", "2", "-q", "--threads", "1"]
    threads = torch.get_num_threads()
    try:
        assert main(["deblur", *common, "-o", str(tmp_path / "a.png"), "--precision", "bf16", "--samples", "2",
                     "--batch-size", "1", "--quality", "draft"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "a_std.png").exists()
    assert main(["deblur", *common, "-o", str(tmp_path / "b.png"), "--precision", "fp64"]) == 2
    assert main(["deblur", *common, "-o", str(tmp_path / "c.png"), "--threads", "0"]) == 2
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "c.png").exists()


def test_inpaint_default_depends_on_the_mask_kind(tmp_path):
    import restore
    from restore_imaging.tasks import HOLES_INPAINT_DEFAULT, TASK_DEFAULTS

    restore.write(str(tmp_path / "random.png"), torch.ones(1, 1, 32, 32))  # a mask file named like a spec

    def plan(mask, **settings):
        return _default_plan("inpaint", 0.0, mask=mask, settings=settings)

    box, random, drawn = plan("box:8,8,12,12"), plan("random:0.5"), plan(str(tmp_path / "random.png"))
    assert (box.sampler, box.sampler_config["steps"]) == HOLES_INPAINT_DEFAULT
    assert (drawn.sampler, drawn.sampler_config["steps"]) == HOLES_INPAINT_DEFAULT
    assert (random.sampler, random.sampler_config["steps"]) == TASK_DEFAULTS["inpaint"]
    assert plan("box:8,8,12,12", sampler="pnp-hqs").sampler == "pnp-hqs"  # --sampler wins
