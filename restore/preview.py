"""Preview strips: ``clean | degraded | restored | per-pixel std`` side by side in one PNG.

``restore TASK --preview`` writes ``OUT_preview.png`` next to the output; ``docs/gallery.py`` builds the
documentation's gallery with the same renderer. Panels are shown at the restored image's size; the std map
is drawn with a perceptually uniform colour map and a colour bar in [0, 1] image units. Volumes show their
middle slice; complex data its magnitude.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

# Anchor colours of matplotlib's "magma" map (0, 1/8, …, 1), linearly interpolated: readable in print and
# for colour-blind readers, dark = certain.
_MAGMA = np.array([
    [0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122],
    [229, 80, 100], [251, 135, 97], [254, 194, 135], [252, 253, 191]], dtype=np.float64)


@dataclass
class Panel:
    """One panel of a strip.

    Attributes:
        title: the heading above the panel (``clean``, ``degraded``, …).
        data: ``(C, H, W)``, ``(B, C, H, W)`` or ``(B, C, D, H, W)`` tensor; real values in [0, 1]
            (complex data shows its magnitude).
        caption: the line under the title (e.g. ``PSNR 26.1 dB · SSIM 0.85``).
        colormap: draw a single-channel map in colour with a colour bar (the std panel).
    """

    title: str
    data: torch.Tensor
    caption: str = ""
    colormap: bool = False


def to_display(data: torch.Tensor) -> np.ndarray:
    """``(H, W, C)`` float array in [0, 1] (C = 1 or 3) for any image-like tensor: first batch entry,
    middle slice of a volume, magnitude of complex data, first three channels of a many-channel image."""
    x = data.detach().cpu()
    if x.is_complex():
        x = x.abs()
    x = x.to(torch.float64)
    if x.dim() in (4, 5):  # (B, C, H, W) or (B, C, D, H, W): the first batch entry
        x = x[0]
    if x.dim() == 4:  # (C, D, H, W): a volume's middle slice
        x = x[:, x.shape[1] // 2]
    if x.dim() == 2:
        x = x[None]
    if x.shape[0] == 2:  # real/imaginary view of a complex image
        x = x.pow(2).sum(0, keepdim=True).sqrt()
    elif x.shape[0] > 3:
        x = x[:3]
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def colorize(values: np.ndarray, vmax: float) -> np.ndarray:
    """``(H, W)`` values in [0, vmax] -> ``(H, W, 3)`` uint8 through the magma map."""
    t = np.clip(values / max(vmax, 1e-12), 0, 1) * (len(_MAGMA) - 1)
    lo = np.floor(t).astype(int).clip(0, len(_MAGMA) - 2)
    frac = (t - lo)[..., None]
    return (_MAGMA[lo] * (1 - frac) + _MAGMA[lo + 1] * frac).round().astype(np.uint8)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _panel_pixels(panel: Panel, size: tuple[int, int]) -> tuple[PILImage.Image, float | None]:
    arr = to_display(panel.data)
    vmax = None
    if panel.colormap:
        gray = arr.mean(-1) if arr.shape[-1] > 1 else arr[..., 0]
        vmax = float(np.quantile(gray, 0.995)) or float(gray.max()) or 1e-3
        img = PILImage.fromarray(colorize(gray, vmax))
    else:
        rgb = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
        img = PILImage.fromarray((rgb * 255).round().astype(np.uint8))
    resample = PILImage.NEAREST if img.size[0] < size[0] else PILImage.LANCZOS
    return img.resize(size, resample), vmax


_PAD, _BAR, _BAR_LABEL, _TEXT, _HEAD = 8, 14, 46, 36, 22


def layout(panels: list[Panel], *, height: int = 256, title: str = "") -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """Canvas size ``(width, height)`` and each panel's image box ``(left, top, width, height)`` in pixels.

    Every panel is drawn at the size of the restored image (the last panel without a colour map) scaled to
    ``height`` rows; a std panel adds a colour bar to its right."""
    ref = to_display(next(p.data for p in reversed(panels) if not p.colormap) if any(not p.colormap for p in panels)
                     else panels[-1].data)
    h, w = ref.shape[:2]
    width = max(16, round(height * w / h))
    top = _PAD + (_HEAD if title else 0) + _TEXT
    boxes, x = [], _PAD
    for p in panels:
        boxes.append((x, top, width, height))
        x += width + (_BAR + _BAR_LABEL if p.colormap else 0) + _PAD
    return (x, top + height + _PAD), boxes


def render_strip(panels: list[Panel], *, height: int = 256, title: str = "") -> PILImage.Image:
    """Draw the panels side by side at ``height`` pixels, with titles and captions; std panels get a
    colour bar labelled in [0, 1] image units. Enlarging uses nearest neighbours (pixels stay visible)."""
    size, boxes = layout(panels, height=height, title=title)
    big, small = _font(15), _font(12)
    canvas = PILImage.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((_PAD, _PAD), title, fill="black", font=big)
    for panel, (x, top, width, h) in zip(panels, boxes):
        draw.text((x, top - _TEXT), panel.title, fill="black", font=big)
        draw.text((x, top - _TEXT + 18), panel.caption, fill=(70, 70, 70), font=small)
        img, vmax = _panel_pixels(panel, (width, h))
        canvas.paste(img, (x, top))
        if vmax is not None:
            ramp = np.linspace(vmax, 0, h)[:, None].repeat(_BAR, 1)
            canvas.paste(PILImage.fromarray(colorize(ramp, vmax)), (x + width + 6, top))
            draw.text((x + width + _BAR + 9, top), f"{vmax:.3g}", fill="black", font=small)
            draw.text((x + width + _BAR + 9, top + h - 13), "0", fill="black", font=small)
    return canvas


def degraded_view(y: torch.Tensor, operator, shape: tuple[int, ...]) -> tuple[torch.Tensor, str]:
    """The measurement shown as an image of the unknown's ``shape``: ``y`` itself when it is an image of
    that size or an integer factor smaller (enlarged with nearest neighbours, as for super-resolution),
    otherwise the operator's cheap estimate (zero-filled image for MRI, FBP for a CT sinogram), with a
    caption saying which."""
    shape = tuple(shape)
    if not y.is_complex() and y.dim() == len(shape) and tuple(y.shape[:-2]) == shape[:-2]:
        (h, w), (H, W) = y.shape[-2:], shape[-2:]
        if (h, w) == (H, W):
            return y.detach().cpu().clamp(0, 1), "measurement"
        if H % h == 0 and W % w == 0 and H // h == W // w:
            flat = y.detach().cpu().reshape(-1, 1, h, w).float()
            big = torch.nn.functional.interpolate(flat, size=(H, W), mode="nearest").reshape(shape)
            return big.clamp(0, 1), "measurement, enlarged"
    with torch.no_grad():
        est = operator.initial_estimate(y).detach().cpu()
    est = est.abs() if est.is_complex() else est
    top = float(est.max())
    return (est / top if top > 1 else est).clamp(0, 1), "shown as A⁺y (cheap estimate)"


def _metrics_caption(metrics: dict[str, float], prefix: str = "") -> str:
    parts = []
    if f"{prefix}psnr" in metrics:
        parts.append(f"PSNR {metrics[f'{prefix}psnr']:.2f} dB")
    if f"{prefix}ssim" in metrics:
        parts.append(f"SSIM {metrics[f'{prefix}ssim']:.3f}")
    return " · ".join(parts)


def strip_panels(restored: torch.Tensor, degraded: torch.Tensor, *, clean: torch.Tensor | None = None,
                 std: torch.Tensor | None = None, degraded_note: str = "",
                 samples: int | None = None) -> list[Panel]:
    """``clean | degraded | restored | std`` panels with PSNR/SSIM captions against ``clean`` (when known).

    Args:
        restored: the estimate ``(B, C, H, W)`` (or a volume) in [0, 1].
        degraded: the measurement shown as an image of the same size (see :func:`degraded_view`).
        clean: the reference (``--simulate``); without it the strip is ``degraded | restored | std``.
        std: per-pixel standard deviation over posterior samples, in [0, 1] units.
        degraded_note: a caption for the degraded panel when no metric applies.
        samples: number of posterior samples behind ``std`` (shown in its caption).
    """
    from .metrics import psnr, ssim

    def scores(x: torch.Tensor) -> str:
        if clean is None or x.shape != clean.shape:
            return ""
        a, b = x.detach().cpu().float().clamp(0, 1), clean.detach().cpu().float()
        if a.dim() == 5:  # volumes: score the middle slice that is shown
            a, b = a[:, :, a.shape[2] // 2], b[:, :, b.shape[2] // 2]
        return _metrics_caption({"psnr": psnr(a, b), "ssim": ssim(a, b)})

    panels = []
    if clean is not None:
        panels.append(Panel("clean", clean, "reference"))
    panels.append(Panel("degraded", degraded, scores(degraded) or degraded_note))
    plain = f"mean of {samples} samples" if samples and samples > 1 else "estimate"
    panels.append(Panel("restored", restored, scores(restored) or plain))
    if std is not None:
        panels.append(Panel("per-pixel std", std, f"over {samples} samples" if samples else "", colormap=True))
    return panels


def write_strip(path: str, panels: list[Panel], *, height: int = 256, title: str = "",
                palette: bool = False) -> str:
    """Render and write the strip as an 8-bit PNG atomically (``palette``: 256 adaptive colours, about a
    third of the size, for the documentation's gallery); returns ``path``."""
    image = render_strip(panels, height=height, title=title)
    if palette:
        image = image.quantize(256, method=PILImage.Quantize.MEDIANCUT, dither=PILImage.Dither.NONE)
    tmp = os.path.join(os.path.dirname(path) or ".", "." + os.path.basename(path) + ".partial")
    image.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    return path


def preview_path(output_path: str) -> str:
    """``photo_deblur.png`` -> ``photo_deblur_preview.png`` (``.nii.gz`` and other outputs alike)."""
    base = output_path[:-7] if output_path.lower().endswith(".nii.gz") else os.path.splitext(output_path)[0]
    return base + "_preview.png"


def check_preview_path(output_path: str, overwrite: bool) -> str:
    """The preview's path for ``output_path``; an existing one is an error unless ``overwrite``."""
    from .errors import OutputExistsError

    path = preview_path(output_path)
    if os.path.exists(path) and not overwrite:
        raise OutputExistsError(f"preview '{path}' exists; pass --overwrite or choose another -o path")
    return path


def run_with_preview(task_name: str, input_path: str, output_path: str | None, settings, options: dict,
                     progress=None, *, height: int = 256, palette: bool = False, path: str | None = None):
    """``restore.tasks.run_task`` plus a preview strip next to the output.

    The strip is ``clean | degraded | restored | std`` with ``settings.simulate`` (PSNR/SSIM against the
    clean input) and ``degraded | restored | std`` without it; the std panel needs ``settings.samples > 1``.
    The restored panel is the written output read back, so it shows what the user got.

    ``height``, ``palette`` and ``path`` (instead of ``OUT_preview.png``) serve the documentation's gallery.

    Returns:
        ``(report, preview_path)``; ``preview_path`` is ``None`` when the output format cannot be read back
        as an image (a warning line says so).
    """
    import dataclasses
    import sys

    from .errors import RestoreError
    from .io import read
    from .tasks import default_output, get_task, run_task

    task = get_task(task_name)
    path = path or check_preview_path(output_path or default_output(input_path, task), settings.overwrite)
    captured = {}

    def build(**kwargs):
        captured["setup"] = task.build(**kwargs)
        return captured["setup"]

    report = run_task(dataclasses.replace(task, build=build), input_path, output_path, settings, options,
                      progress=progress)
    setup = captured["setup"]
    try:
        restored = read(report.output).data
        std_paths = [p for p in report.extra_outputs if os.path.splitext(p)[0].endswith("_std")]
        std = read(std_paths[0]).data if std_paths else None
    except RestoreError as exc:
        print(f"warning: no preview: cannot read '{report.output}' back as an image ({exc})", file=sys.stderr)
        return report, None
    clean = setup.reference.detach().cpu() if setup.reference is not None else None
    if clean is not None and clean.shape != restored.shape:
        clean = None
    degraded, note = degraded_view(setup.problem.y, setup.problem.operator, tuple(restored.shape))
    panels = strip_panels(restored, degraded, clean=clean, std=std, degraded_note=note,
                          samples=settings.samples if std is not None else None)
    write_strip(path, panels, height=height, palette=palette,
                title=f"restore {task_name} · {report.sampler} · prior {report.prior}")
    report.extra_outputs.append(path)
    return report, path
