"""Configurations of published checkpoints, found by preset name or by the file name they were published under.

Each preset gives the architecture, its config (the flags of the official sampling commands), and the
schedule it was trained with. Sources: guided-diffusion's README model flags; DPS's
``configs/model_config.yaml`` (FFHQ) and ``imagenet_model_config.yaml``; consistency_models' README and
``scripts/launch.sh``; score-SDE's ``configs/``. This module imports no torch (listings read it).
"""
from __future__ import annotations

import os
from pathlib import Path

ADM_256 = dict(image_size=256, num_channels=256, num_res_blocks=2, attention_resolutions=[32, 16, 8],
               num_head_channels=64, learn_sigma=True, use_scale_shift_norm=True, resblock_updown=True,
               use_fp16=True)
CM_64 = dict(image_size=64, num_channels=192, num_res_blocks=3, attention_resolutions=[32, 16, 8],
             num_head_channels=64, class_cond=True, use_scale_shift_norm=True, resblock_updown=True,
             use_new_attention_order=True, use_fp16=True)
CM_LSUN = dict(image_size=256, num_channels=256, num_res_blocks=2, attention_resolutions=[32, 16, 8],
               num_head_channels=64, use_scale_shift_norm=False, resblock_updown=True,
               use_new_attention_order=True, use_fp16=True)
KARRAS = dict(type="karras", steps=1000, sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, rho=7.0)
GD_URL = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/"
CM_URL = "https://openaipublic.blob.core.windows.net/consistency/"

PRESETS: dict[str, dict] = {
    "dps-ffhq-256": dict(
        architecture="adm", files=["ffhq_10m.pt"],
        config=dict(image_size=256, num_channels=128, num_res_blocks=1, attention_resolutions=[16], num_heads=4,
                    num_head_channels=64, learn_sigma=True, use_scale_shift_norm=True, resblock_updown=True),
        schedule=dict(type="linear", steps=1000),
        summary="ADM FFHQ 256² of DPS (ffhq_10m.pt); linear 1000 steps",
        source="the DPS repository (github.com/DPS2022/diffusion-posterior-sampling, 'Getting started')"),
    "adm-imagenet-256-uncond": dict(
        architecture="adm", files=["256x256_diffusion_uncond.pt", "imagenet256.pt"], config=ADM_256,
        schedule=dict(type="linear", steps=1000),
        summary="ADM ImageNet 256² unconditional (guided-diffusion; DPS/DiffPIR ImageNet prior)",
        source=GD_URL + "256x256_diffusion_uncond.pt"),
    "adm-imagenet-256": dict(
        architecture="adm", files=["256x256_diffusion.pt"], config=dict(ADM_256, class_cond=True),
        schedule=dict(type="linear", steps=1000),
        summary="ADM ImageNet 256² class-conditional (run unconditionally unless class_label is set)",
        source=GD_URL + "256x256_diffusion.pt"),
    "adm-imagenet-128": dict(
        architecture="adm", files=["128x128_diffusion.pt"],
        config=dict(image_size=128, num_channels=256, num_res_blocks=2, attention_resolutions=[32, 16, 8],
                    num_heads=4, learn_sigma=True, class_cond=True, use_scale_shift_norm=True,
                    resblock_updown=True, use_fp16=True),
        schedule=dict(type="linear", steps=1000),
        summary="ADM ImageNet 128² class-conditional", source=GD_URL + "128x128_diffusion.pt"),
    "adm-imagenet-64": dict(
        architecture="adm", files=["64x64_diffusion.pt"],
        config=dict(image_size=64, num_channels=192, num_res_blocks=3, attention_resolutions=[32, 16, 8],
                    num_head_channels=64, learn_sigma=True, class_cond=True, use_scale_shift_norm=True,
                    resblock_updown=True, use_new_attention_order=True, use_fp16=True, dropout=0.1),
        schedule=dict(type="cosine", steps=1000),
        summary="ADM ImageNet 64² class-conditional; cosine 1000 steps", source=GD_URL + "64x64_diffusion.pt"),
    "cm-imagenet-64": dict(
        architecture="adm", files=["cd_imagenet64_lpips.pt", "cd_imagenet64_l2.pt", "ct_imagenet64.pt"],
        config=CM_64, schedule=KARRAS,
        summary="consistency model ImageNet 64² (x0-predictor at any σ; class-conditional)",
        source=CM_URL + "cd_imagenet64_lpips.pt"),
    "edm-imagenet-64": dict(
        architecture="adm", files=["edm_imagenet64_ema.pt"], config=CM_64,
        schedule=dict(KARRAS, boundary_condition=False),
        summary="EDM teacher of the consistency models, ImageNet 64²", source=CM_URL + "edm_imagenet64_ema.pt"),
    "cm-lsun-bedroom-256": dict(
        architecture="adm", files=["cd_bedroom256_lpips.pt", "cd_bedroom256_l2.pt", "ct_bedroom256.pt"],
        config=CM_LSUN, schedule=KARRAS, summary="consistency model LSUN bedroom 256²",
        source=CM_URL + "cd_bedroom256_lpips.pt"),
    "cm-lsun-cat-256": dict(
        architecture="adm", files=["cd_cat256_lpips.pt", "cd_cat256_l2.pt", "ct_cat256.pt"],
        config=CM_LSUN, schedule=KARRAS, summary="consistency model LSUN cat 256²",
        source=CM_URL + "cd_cat256_lpips.pt"),
    "score-sde-ve-ffhq-256": dict(
        architecture="ncsnpp", files=[],
        config=dict(image_size=256, sigma_max=348.0, sigma_min=0.01, num_scales=2000),
        schedule=dict(type="ve-sde", steps=2000, sigma_min=0.01, sigma_max=348.0),
        summary="NCSN++ VE FFHQ 256² (score-SDE configs/ve/ffhq_256_ncsnpp_continuous)",
        source="the score_sde_pytorch README (checkpoint_48.pth of ffhq_256_ncsnpp_continuous)"),
    "score-sde-vp-cifar10-ddpmpp": dict(
        architecture="ncsnpp", files=[],
        config=dict(image_size=32, centered=True, ch_mult=[1, 2, 2, 2], num_res_blocks=4, fir=False,
                    progressive="none", progressive_input="none", embedding_type="positional",
                    scale_by_sigma=False, sigma_max=50.0),
        schedule=dict(type="vp-sde", steps=1000, beta_min=0.1, beta_max=20.0),
        summary="DDPM++ VP CIFAR-10 32² (score-SDE configs/vp/cifar10_ddpmpp_continuous)",
        source="the score_sde_pytorch README (checkpoint_8.pth of cifar10_ddpmpp_continuous)"),
}


def preset_for_file(path: str | os.PathLike) -> str | None:
    """The preset whose published file name is ``path``'s name, or ``None``."""
    name = Path(path).name
    for key, preset in PRESETS.items():
        if name in preset["files"]:
            return key
    return None


def checkpoint_dirs() -> list[Path]:
    """Where registered presets look for their files: ``$RESTORE_CHECKPOINTS`` (``os.pathsep``-separated),
    ``~/.cache/restore/checkpoints`` and ``./models`` (the DPS/guided-diffusion habit)."""
    dirs = [Path(p) for p in os.environ.get("RESTORE_CHECKPOINTS", "").split(os.pathsep) if p]
    return dirs + [Path.home() / ".cache" / "restore" / "checkpoints", Path("models")]


def find_preset_file(preset: str) -> Path | None:
    for folder in checkpoint_dirs():
        for name in PRESETS[preset]["files"]:
            if (folder / name).is_file():
                return folder / name
    return None
