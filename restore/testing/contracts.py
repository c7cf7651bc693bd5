"""Contract test suites for pytest: subclass one per component and pytest runs every check.

Example (a plugin's ``tests/test_contract.py``)::

    from restore.testing import OperatorContract

    class TestVignetting(OperatorContract):
        operator = "vignetting"          # a registered name, or a factory callable
        params = {"strength": 0.5}
        x_shape = (2, 3, 16, 16)         # (B, C, H, W)

The base classes' names do not start with ``Test``, so pytest collects only your subclasses. The
fixtures they use (``restore_generator``, ``gaussian_fixture``, ``tmp_path``) come from the ``restore``
pytest plugin that ``pip install restore`` registers.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import pytest
import torch

from ..errors import InvalidInputError, RestoreError
from ..operators.base import Operator
from ..priors.base import DiffusionPrior, MeanRevertingFamily, Prior
from ..samplers.base import Sampler
from . import checks, model_checks
from .fixtures import GaussianFixture


def _checked(obj: Any, cls: type) -> Any:
    """``obj`` if it is a ``cls``; otherwise the contract fails naming what the factory returned."""
    if not isinstance(obj, cls):
        pytest.fail(f"the factory returned {type(obj).__name__}, not a restore.{cls.__name__}")
    return obj


def _component(kind: str, spec: Any, params: dict[str, Any]) -> Any:
    if spec is None:
        raise TypeError(f"set the class attribute '{kind}' to a registered name or a factory")
    if isinstance(spec, str):
        from ..plugins import registry

        return registry().get(kind, spec).build(**params)
    return spec(**params)


class OperatorContract:
    """Contract of a degradation operator.

    Class attributes:
        operator: registered name (``restore list operators``) or factory returning the operator.
        params: keyword arguments for the factory.
        x_shape: shape of ``x`` for the checks, ``(B, C, H, W)`` with ``B >= 2``.
        adjoint_tol, pinv_tol, gradient_tol: tolerances of the float64 checks.
        check_pinv: set False when ``pinv`` is knowingly approximate (e.g. a truncated iteration).
    """

    operator: ClassVar[str | Callable[..., Operator] | None] = None
    params: ClassVar[dict[str, Any]] = {}
    x_shape: ClassVar[tuple[int, ...]] = (2, 3, 16, 16)
    adjoint_tol: ClassVar[float] = 1e-5
    pinv_tol: ClassVar[float] = 1e-4
    gradient_tol: ClassVar[float] = 1e-5
    check_pinv: ClassVar[bool] = True

    def make_operator(self) -> Operator:
        """Build the operator under test (override for operators that need more than ``params``)."""
        return _component("operator", type(self).operator, dict(self.params))

    @pytest.fixture
    def op(self) -> Operator:
        return _checked(self.make_operator(), Operator)

    def _linear_only(self, op: Operator) -> None:
        if not op.linear:
            pytest.skip("linear operators only")

    def test_registration_matches_operator(self, op: Operator) -> None:
        if not isinstance(self.operator, str):
            pytest.skip("operator given as a factory, not a registered name")
        from ..plugins import registry

        declared = registry().get("operator", self.operator).metadata.get("linear")
        assert declared == op.linear, (f"registered with linear={declared} but the operator has "
                                       f"linear={op.linear}")

    def test_shapes_and_dtypes(self, op: Operator, restore_generator: torch.Generator) -> None:
        checks.check_shapes_and_dtypes(op, self.x_shape, restore_generator)

    def test_device_roundtrip(self, op: Operator, restore_generator: torch.Generator) -> None:
        checks.check_device_roundtrip(op, self.x_shape, restore_generator)

    def test_batch_independence(self, op: Operator, restore_generator: torch.Generator) -> None:
        checks.check_batch_independence(op, self.x_shape, restore_generator)

    def test_composition(self, op: Operator, restore_generator: torch.Generator) -> None:
        checks.check_composition(op, self.x_shape, restore_generator)

    def test_adjoint(self, op: Operator, restore_generator: torch.Generator) -> None:
        self._linear_only(op)
        checks.check_adjoint(op, self.x_shape, restore_generator, tol=self.adjoint_tol)

    def test_linearity(self, op: Operator, restore_generator: torch.Generator) -> None:
        self._linear_only(op)
        checks.check_linearity(op, self.x_shape, restore_generator)

    def test_normal(self, op: Operator, restore_generator: torch.Generator) -> None:
        self._linear_only(op)
        checks.check_normal(op, self.x_shape, restore_generator)

    def test_pinv_on_range(self, op: Operator, restore_generator: torch.Generator) -> None:
        self._linear_only(op)
        if not self.check_pinv:
            pytest.skip("check_pinv = False")
        checks.check_pinv_on_range(op, self.x_shape, restore_generator, tol=self.pinv_tol)

    def test_gradient(self, op: Operator, restore_generator: torch.Generator) -> None:
        checks.check_gradient(op, self.x_shape, restore_generator, tol=self.gradient_tol)


class PriorContract:
    """Contract of a diffusion prior.

    Class attributes:
        prior: registered name (``restore list priors``) or factory returning the prior.
        params: keyword arguments for the factory.
        x_shape: input shape, ``(B, C, H, W)`` matching the prior's channels and size multiple.
        tol: relative tolerance of the eps/x0/v/score identities (float32 networks: ~1e-4).
        dtype: dtype of the test inputs (the network's precision).

    Override :meth:`clean_images` to return a few clean ``(B, C, H, W)`` images in [0, 1] from the prior's
    domain; the denoising check then verifies that the Tweedie denoiser beats doing nothing, and
    :meth:`draw` to expose the prior's own sampler to the determinism check.
    """

    prior: ClassVar[str | Callable[..., Prior] | None] = None
    params: ClassVar[dict[str, Any]] = {}
    x_shape: ClassVar[tuple[int, ...]] = (2, 3, 16, 16)
    tol: ClassVar[float] = 1e-4
    dtype: ClassVar[torch.dtype] = torch.float32

    def make_prior(self) -> DiffusionPrior:
        """Build the prior under test, in evaluation mode."""
        return _component("prior", type(self).prior, dict(self.params)).eval()

    def clean_images(self, generator: torch.Generator) -> torch.Tensor | None:
        """Clean test images ``(B, C, H, W)`` in [0, 1], or ``None`` to skip the denoising check."""
        return None

    def draw(self, prior: DiffusionPrior, generator: torch.Generator) -> torch.Tensor | None:
        """A draw from the prior's own sampler, or ``None`` when it has none."""
        return None

    @pytest.fixture
    def prior_under_test(self) -> Prior:
        return _checked(self.make_prior(), Prior)

    def test_schedule(self, prior_under_test: Prior) -> None:
        if isinstance(prior_under_test, MeanRevertingFamily):
            model_checks.check_mr_schedule(prior_under_test.schedule)
        else:
            model_checks.check_schedule(prior_under_test.schedule)

    def test_range_mapping(self, prior_under_test: Prior) -> None:
        model_checks.check_range_mapping(prior_under_test)

    def test_prediction_consistency(self, prior_under_test: Prior, restore_generator) -> None:
        if isinstance(prior_under_test, MeanRevertingFamily):
            model_checks.check_mr_prediction_consistency(prior_under_test, self.x_shape, restore_generator,
                                                         dtype=self.dtype, tol=self.tol)
        else:
            model_checks.check_prediction_consistency(prior_under_test, self.x_shape, restore_generator,
                                                      dtype=self.dtype, tol=self.tol)

    def test_determinism(self, prior_under_test: Prior, restore_generator) -> None:
        prior = prior_under_test
        if isinstance(prior, MeanRevertingFamily):
            model_checks.check_mr_determinism(prior, self.x_shape, restore_generator, dtype=self.dtype, tol=self.tol)
            return
        sample = None
        if self.draw(prior, torch.Generator().manual_seed(0)) is not None:
            sample = lambda g: self.draw(prior, g)  # noqa: E731
        model_checks.check_prior_determinism(prior, self.x_shape, restore_generator, dtype=self.dtype,
                                             tol=self.tol, sample=sample)

    def test_wrong_channels_is_a_shape_error(self, prior_under_test: Prior) -> None:
        prior = prior_under_test
        if prior.channels is None:
            pytest.skip("prior accepts any shape")
        x = torch.zeros((1, prior.channels + 1) + tuple(self.x_shape[2:]), dtype=self.dtype)
        with pytest.raises(InvalidInputError):
            if isinstance(prior, MeanRevertingFamily):
                prior.eps(x, 1, x)
            else:
                prior.eps(x, 0)

    def test_denoising(self, prior_under_test: Prior, restore_generator) -> None:
        clean = self.clean_images(restore_generator)
        if clean is None:
            pytest.skip("no clean_images() given")
        if isinstance(prior_under_test, MeanRevertingFamily):
            pytest.skip("the denoising check is for VP priors")
        model_checks.check_denoising(prior_under_test, clean.to(self.dtype), restore_generator)


class SamplerContract:
    """Contract of a sampler, on the analytic fixtures of its prior family (SAMPLERS.md §1.6, §9).

    VP samplers run on the Gaussian fixture (:class:`GaussianFixture`); samplers of the mean-reverting
    family on the analytic mean-reverting prior ``x0 ~ N(m0, s0² I)`` (independent of ``μ``, so every sampler
    must reproduce that distribution).

    Class attributes:
        sampler: registered name (``restore list samplers``) or factory ``factory(**config)``.
        config: config overrides for the contract runs (e.g. ``{"steps": 50}``).
        measurement: whether the sampler conditions on a measurement; by default, whether its
            ``requires`` contains ``"operator"``.
        n_samples: Monte-Carlo batch for the moment checks.
        moment_bias: allowed discretisation bias of unconditional samples (prior std units).
        posterior_factor: without an :meth:`affine_steps` description, the samples' mean must end within
            this fraction of the prior-to-posterior mean distance from the posterior mean.

    Override :meth:`affine_steps` to hold the sampler to the exact moment oracle, the standard the built-in
    samplers meet: describe each step as ``x' = M x + b + L z`` with :func:`restore.testing.tweedie_affine`.
    """

    sampler: ClassVar[str | Callable[..., Sampler] | None] = None
    config: ClassVar[dict[str, Any]] = {}
    measurement: ClassVar[bool | None] = None
    n_samples: ClassVar[int] = 2000
    moment_bias: ClassVar[float] = 0.1
    posterior_factor: ClassVar[float] = 0.8

    def make_sampler(self) -> Sampler:
        return _component("sampler", type(self).sampler, dict(self.config))

    def affine_steps(self, fixture: GaussianFixture, sampler: Sampler) -> list | None:
        """The sampler's steps on ``fixture`` as ``[(M, b, L), ...]`` from ``x_T ~ N(0, I)`` (with the
        measurement ``fixture.y`` when it conditions on one), or ``None`` when they are not affine."""
        return None

    def _is_measurement(self, sampler: Sampler) -> bool:
        if self.measurement is not None:
            return self.measurement
        return "operator" in getattr(sampler, "requires", ())

    @staticmethod
    def _family(sampler: Sampler) -> str:
        families = getattr(sampler, "families", (DiffusionPrior,))
        if any(issubclass(DiffusionPrior, f) for f in families):
            return "vp"
        if any(issubclass(MeanRevertingFamily, f) for f in families):
            return "mean-reverting"
        pytest.skip(f"no analytic fixture for the families {families}")

    def _problem(self, y: torch.Tensor, operator, sigma: float):
        from ..operators.noise import GaussianNoise
        from ..problem import Problem

        return Problem(y, operator, GaussianNoise(sigma))

    def test_config_rejects_unknown_options(self) -> None:
        if not isinstance(self.sampler, str):
            pytest.skip("sampler given as a factory")
        from ..plugins import registry

        with pytest.raises(RestoreError):
            registry().get("sampler", self.sampler).build(**self.config, no_such_option=1)

    def test_output_shape_dtype_and_seed(self, gaussian_fixture: GaussianFixture) -> None:
        sampler = self.make_sampler()
        if self._family(sampler) == "mean-reverting":
            from ..operators.base import Identity

            mu = torch.full((3, 1, 2, 2), 0.3, dtype=torch.float64)
            model_checks.check_sampler_basics(self.make_sampler, model_checks.mr_fixture_prior(),
                                              self._problem(mu, Identity(), 0.0), mu.shape)
            return
        fx = gaussian_fixture
        problem = self._problem(fx.batch_y(3), fx.operator, fx.sigma_y) if self._is_measurement(sampler) else None
        model_checks.check_sampler_basics(self.make_sampler, fx.prior, problem, (3, fx.d))

    def test_unconditional_moments(self, gaussian_fixture: GaussianFixture) -> None:
        sampler = self.make_sampler()
        if self._family(sampler) == "mean-reverting":
            model_checks.check_mr_moments(self.make_sampler, n=self.n_samples, bias=self.moment_bias)
            return
        if self._is_measurement(sampler):
            pytest.skip("measurement sampler")
        model_checks.check_unconditional_moments(self.make_sampler, gaussian_fixture, n=self.n_samples,
                                                 bias=self.moment_bias)

    def test_moves_toward_posterior_mean(self, gaussian_fixture: GaussianFixture) -> None:
        sampler = self.make_sampler()
        if self._family(sampler) != "vp" or not self._is_measurement(sampler):
            pytest.skip("no measurement on the Gaussian fixture")
        model_checks.check_posterior_shift(self.make_sampler, gaussian_fixture, n=self.n_samples // 4,
                                           factor=self.posterior_factor)

    def test_moment_oracle(self, gaussian_fixture: GaussianFixture) -> None:
        sampler = self.make_sampler()
        if self._family(sampler) != "vp":
            pytest.skip("the affine-Gaussian oracle is for VP samplers")
        steps = self.affine_steps(gaussian_fixture, sampler)
        if steps is None:
            pytest.skip("affine_steps() not given: override it to hold the sampler to the exact moment oracle")
        from .oracles import affine_moments, check_moments

        fx, n = gaussian_fixture, 3 * self.n_samples
        problem = self._problem(fx.batch_y(n), fx.operator, fx.sigma_y) if self._is_measurement(sampler) else None
        x = model_checks.run_sampler(self.make_sampler(), fx.prior, problem, (n, fx.d), seed=0).x
        check_moments(x, *affine_moments(steps))


class IOContract:
    """Contract of a reader/writer pair registered for ``extension``.

    Class attributes:
        extension: e.g. ``".pfm"``; the file written is ``tmp_path / ("image" + extension)``.
        shape: test image shape ``(B, C, H, W)`` (or ``(B, C, D, H, W)`` for volume formats).
        levels: the test data is quantised to ``k / levels`` so lossless integer formats round-trip
            exactly; ``None`` for float formats.
        tol: allowed max abs error after the round trip (lossy formats need more).
    """

    extension: ClassVar[str] = ""
    shape: ClassVar[tuple[int, ...]] = (1, 3, 16, 16)
    levels: ClassVar[int | None] = 255
    tol: ClassVar[float] = 1e-6

    def make_data(self, generator: torch.Generator) -> torch.Tensor:
        data = torch.rand(self.shape, generator=generator, dtype=torch.float64)
        if self.levels:
            data = torch.round(data * self.levels) / self.levels
        return data.float()

    def test_extension_is_registered(self) -> None:
        from ..io import match_extension

        for kind in ("reader", "writer"):
            comp = match_extension(kind, "image" + self.extension)
            assert self.extension in comp.metadata.get("extensions", ()), (kind, comp.name)

    def test_roundtrip(self, tmp_path, restore_generator: torch.Generator) -> None:
        model_checks.check_io_roundtrip(tmp_path / ("image" + self.extension), self.make_data(restore_generator),
                                        tol=self.tol)

    def test_missing_file_is_a_one_line_error(self, tmp_path) -> None:
        from ..io import read

        with pytest.raises(RestoreError) as info:
            read(tmp_path / ("missing" + self.extension))
        assert "\n" not in str(info.value)

    def test_existing_output_is_not_overwritten(self, tmp_path, restore_generator: torch.Generator) -> None:
        from ..errors import OutputExistsError
        from ..io import write

        path = tmp_path / ("image" + self.extension)
        data = self.make_data(restore_generator)
        write(path, data)
        before = path.read_bytes()
        with pytest.raises(OutputExistsError):
            write(path, 1 - data, overwrite=False)
        assert path.read_bytes() == before
