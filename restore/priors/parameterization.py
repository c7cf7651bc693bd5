"""Conversions between eps-, x0- and v-prediction, in one place (SAMPLERS.md §1.1).

With ``x = a x0 + s eps``:  ``x0 = (x - s eps)/a``, ``eps = (x - a x0)/s``, ``v = a eps - s x0``,
``x0 = a x - s v``, ``eps = s x + a v``.
"""
from __future__ import annotations

import torch

from ..errors import InvalidInputError

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def _check(kind: str) -> None:
    if kind not in PREDICTION_TYPES:
        raise InvalidInputError(f"unknown prediction type '{kind}'; choose one of {', '.join(PREDICTION_TYPES)}")


def to_eps(out: torch.Tensor, x: torch.Tensor, a: torch.Tensor, s: torch.Tensor, kind: str) -> torch.Tensor:
    _check(kind)
    if kind == "epsilon":
        return out
    if kind == "sample":
        return (x - a * out) / s
    return s * x + a * out


def to_x0(out: torch.Tensor, x: torch.Tensor, a: torch.Tensor, s: torch.Tensor, kind: str) -> torch.Tensor:
    _check(kind)
    if kind == "epsilon":
        return (x - s * out) / a
    if kind == "sample":
        return out
    return a * x - s * out


def to_v(out: torch.Tensor, x: torch.Tensor, a: torch.Tensor, s: torch.Tensor, kind: str) -> torch.Tensor:
    eps = to_eps(out, x, a, s, kind)
    x0 = to_x0(out, x, a, s, kind)
    return a * eps - s * x0
