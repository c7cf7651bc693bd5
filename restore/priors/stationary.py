"""Stationary Gaussian image prior: covariance diagonal in the Fourier domain, no training needed.

After an orthonormal colour decorrelation ``U`` (PCA of pixel colours), each channel is a stationary
Gaussian field with radial power spectrum ``P(f) = A / (f² + f0²)^(α/2) + floor`` (``f`` in
cycles/pixel), which holds at any image size. It is exact for its own model, so samplers run on it
with exact scores via FFTs; it is the fallback default prior when no trained prior matches.
"""
from __future__ import annotations

import json
from importlib import resources

import numpy as np
import torch

from ..errors import InvalidInputError
from .base import DiffusionPrior
from .schedules import VPSchedule


class StationaryGaussianPrior(DiffusionPrior):
    """Gaussian prior on ``(B, C, H, W)`` images in model range ``[-1, 1]``, circulant per channel.

    Args:
        colour_basis: ``(C, C)`` orthonormal matrix whose columns are the decorrelated channels.
        mean: ``(C,)`` per-channel mean in model units.
        spectra: ``(C, 4)`` rows ``(A, f0, alpha, floor)`` of the decorrelated channels.
    """

    kind = "analytic"

    def __init__(self, colour_basis, mean, spectra, schedule: VPSchedule | None = None) -> None:
        basis = torch.as_tensor(colour_basis, dtype=torch.float64)
        C = basis.shape[0]
        super().__init__(schedule or VPSchedule.linear(), channels=C, data_range=(-1.0, 1.0))
        self.register_buffer("basis", basis)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64).reshape(C))
        self.register_buffer("spectra", torch.as_tensor(spectra, dtype=torch.float64).reshape(C, 4))

    def power(self, H: int, W: int) -> torch.Tensor:
        """Per-channel power ``(C, H, W // 2 + 1)`` on the rfft2 grid (orthonormal FFT units)."""
        fy = torch.fft.fftfreq(H, dtype=torch.float64)[:, None]
        fx = torch.fft.rfftfreq(W, dtype=torch.float64)[None, :]
        f2 = fy**2 + fx**2
        A, f0, alpha, floor = (self.spectra[:, i, None, None] for i in range(4))
        return A / (f2 + f0**2) ** (alpha / 2) + floor

    def _decorrelate(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bchw,cd->bdhw", x, self.basis.to(x.dtype))

    def _recorrelate(self, w: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bdhw,cd->bchw", w, self.basis.to(w.dtype))

    def _apply_ck(self, x: torch.Tensor, a: torch.Tensor, s: torch.Tensor, power: float) -> torch.Tensor:
        """``(a²Σ + s²I)^power x`` for ``x`` of shape (B, C, H, W), ``a, s`` of shape (B,)."""
        H, W = x.shape[-2:]
        P = self.power(H, W).to(x.device)
        spec = torch.fft.rfft2(self._decorrelate(x), norm="ortho")
        a = a.to(x.device, torch.float64).reshape(-1, 1, 1, 1)
        s = s.to(x.device, torch.float64).reshape(-1, 1, 1, 1)
        gain = ((a * a * P + s * s) ** power).to(x.dtype)
        w = torch.fft.irfft2(spec * gain, s=(H, W), norm="ortho")
        return self._recorrelate(w)

    def model_output(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        a, s = self.schedule.a(k.cpu()), self.schedule.s(k.cpu())
        mean = self.mean.to(x.dtype).reshape(1, -1, 1, 1)
        u = x - a.to(x.device, x.dtype).reshape(-1, 1, 1, 1) * mean
        return s.to(x.device, x.dtype).reshape(-1, 1, 1, 1) * self._apply_ck(u, a, s, -1.0)

    def sample(self, shape: tuple[int, int, int, int], generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(shape, generator=generator, dtype=torch.float64)
        one = torch.ones(shape[0], dtype=torch.float64)
        x = self._apply_ck(z, one, 0 * one, 0.5)
        return x + self.mean.reshape(1, -1, 1, 1)

    # -- fitting ----------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, images: list[np.ndarray]) -> "StationaryGaussianPrior":
        """Fit colour basis, mean and power-law spectra to ``(H, W, C)`` float images in [0, 1]."""
        if not images:
            raise InvalidInputError("need at least one image to fit a stationary prior")
        C = images[0].shape[2]
        pix = np.concatenate([im.reshape(-1, C) for im in images]) * 2 - 1
        mean = pix.mean(0)
        evals, basis = np.linalg.eigh(np.cov(pix.T).reshape(C, C))
        basis = basis[:, ::-1].copy()
        sums, counts = {}, {}
        for im in images:
            w = ((im * 2 - 1) - mean) @ basis  # (H, W, C)
            H, W = w.shape[:2]
            spec = np.abs(np.fft.rfft2(w, axes=(0, 1), norm="ortho")) ** 2
            f = np.sqrt(np.fft.fftfreq(H)[:, None] ** 2 + np.fft.rfftfreq(W)[None, :] ** 2)
            bins = np.clip((f / 0.5 * 64).astype(int), 0, 63)
            for c in range(C):
                sums.setdefault(c, np.zeros(64))
                counts.setdefault(c, np.zeros(64))
                np.add.at(sums[c], bins.ravel(), spec[..., c].ravel())
                np.add.at(counts[c], bins.ravel(), 1)
        centres = (np.arange(64) + 0.5) / 64 * 0.5
        rows = []
        for c in range(C):
            ok = counts[c] > 0
            fr, pw = centres[ok], sums[c][ok] / counts[c][ok]
            best = None
            for f0 in (0.01, 0.02, 0.04):  # a floor on f0 keeps the variance of the mean bounded at any size
                X = np.stack([np.ones_like(fr), -0.5 * np.log(fr**2 + f0**2)], 1)
                coef, *_ = np.linalg.lstsq(X, np.log(pw), rcond=None)
                err = float(((X @ coef - np.log(pw)) ** 2).sum())
                if best is None or err < best[0]:
                    best = (err, float(np.exp(coef[0])), f0, float(coef[1]))
            _, A, f0, alpha = best
            rows.append([A, f0, alpha, float(pw.min()) * 0.05])
        return cls(basis, mean, np.array(rows))

    def to_dict(self) -> dict:
        return {"colour_basis": self.basis.tolist(), "mean": self.mean.tolist(), "spectra": self.spectra.tolist()}


def default_stationary_prior(channels: int = 3) -> StationaryGaussianPrior:
    """The shipped fit (``stationary_default.json``) for 1 or 3 channels; other C reuse the gray fit."""
    params = json.loads(resources.files("restore.priors").joinpath("stationary_default.json").read_text())
    key = "rgb" if channels == 3 else "gray"
    p = params[key]
    if channels not in (1, 3):
        C = int(channels)
        return StationaryGaussianPrior(np.eye(C), [p["mean"][0]] * C, [p["spectra"][0]] * C)
    return StationaryGaussianPrior(p["colour_basis"], p["mean"], p["spectra"])
