"""Hook implementations of the first-party imaging plugin: operators and the four imaging tasks."""
import functools

from restore.hookspecs import hookimpl


@hookimpl
def restore_register_operators(register):
    image_operator = functools.partial(register, linear=True, domain="image")  # all of them
    image_operator("gaussian-blur", "restore_imaging.blur:GaussianBlur",
                   summary="Gaussian blur (sigma, size, boundary valid|reflect|replicate|zero|circular); "
                           "FFT fast paths")
    image_operator("motion-blur", "restore_imaging.blur:MotionBlur",
                   summary="anti-aliased linear motion blur (length, angle in degrees, boundary); FFT fast paths")
    image_operator("kernel", "restore_imaging.blur:KernelBlur",
                   summary="blur with a kernel image file or tensor (normalize, boundary); FFT fast paths")
    image_operator("super-resolution", "restore_imaging.resize:SuperResolution",
                   summary="downsampling by an integer factor (method avgpool | bicubic, boundary of the "
                           "bicubic filter)")
    image_operator("inpainting", "restore_imaging.masks:Inpainting",
                   summary="pixel mask (mask file/tensor, random fraction, or box); closed forms")
    image_operator("denoising", "restore.operators.base:Identity", summary="identity (Gaussian denoising)")
    image_operator("colorization", "restore_imaging.color:Colorization",
                   summary="RGB to gray with ITU-R BT.601 weights; closed-form pinv")


@hookimpl
def restore_register_tasks(register):
    register("deblur", "restore_imaging.tasks:deblur_task", summary="remove a known blur (Gaussian, motion or a kernel image)")
    register("super-resolve", "restore_imaging.tasks:super_resolve_task",
             summary="upscale by an integer factor (inverts bicubic or average-pool downsampling)")
    register("inpaint", "restore_imaging.tasks:inpaint_task", summary="fill in missing pixels given by a mask")
    register("denoise", "restore_imaging.tasks:denoise_task",
             summary="remove Gaussian noise (its level is estimated unless --noise gives it; --simulate adds 25/255)")
