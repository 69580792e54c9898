"""The IC-Light relighting engine (lllyasviel/IC-Light, Apache-2.0), through diffusers.

IC-Light's foreground-conditioned model is SD 1.5 with the UNet's input widened to 8
channels (the noisy latent plus the subject's latent) and its weights shipped as offsets
to SD 1.5's. The light direction enters as the img2img starting picture: a gradient that
is bright where the light comes from, as the IC-Light reference does. The subject comes
from our own matte (not RMBG-1.4, whose licence is non-commercial); the whole region is
processed at its own aspect ratio (no centre crop), and "keep colours" puts the original's
colour back under the new light, which guards against IC-Light's colour shift.

The background-conditioned model (12 input channels: latent, subject, background) relights
a subject to match a new background; background.generate uses it when it is pulled.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import devices, imaging, models
from . import DIFFUSION_PACKAGES, EngineInfo, default, get, register
from .diffusion import weights_variant, work_size
from .lights import LUMA, Settings, rig
from .relight import Lighting

WORK_SIDE = 768
#: variant: (model name, offsets file, UNet input channels)
VARIANTS = {"fc": ("ic-light-fc", "iclight_sd15_fc.safetensors", 8),
            "fbc": ("ic-light-fbc", "iclight_sd15_fbc.safetensors", 12)}


def widen_conv_in(unet, channels: int = 8) -> None:
    """A conv_in taking `channels` inputs: the old weights for the first ones, zeros for
    the new ones, so the widened UNet computes exactly what it did before."""
    import torch

    old = unet.conv_in
    new = torch.nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                          device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, :old.in_channels].copy_(old.weight)
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=channels)


def merge_offsets(unet, offsets: dict) -> None:
    """Every weight becomes base + offset; the offsets must cover exactly the UNet's."""
    state = unet.state_dict()
    missing, extra = sorted(set(state) - set(offsets)), sorted(set(offsets) - set(state))
    if missing or extra:
        raise ValueError(f"IC-Light offsets do not match the UNet: {len(missing)} missing "
                         f"(e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]})")
    for key, value in offsets.items():
        if value.shape != state[key].shape:
            raise ValueError(f"IC-Light offset {key} has shape {tuple(value.shape)}, the UNet "
                             f"{tuple(state[key].shape)}")
    unet.load_state_dict({k: state[k] + offsets[k].to(state[k].dtype) for k in state})


def concat_forward(unet) -> None:
    """Make the UNet append the subject's latent (cross_attention_kwargs["concat"]) to its
    input, as IC-Light's pipeline does, so a stock diffusers pipeline can drive it."""
    import torch

    forward = unet.forward

    def with_subject(sample, timestep, encoder_hidden_states, **kwargs):
        extra = dict(kwargs.get("cross_attention_kwargs") or {})
        subject = extra.pop("concat").to(sample)
        subject = subject.repeat(sample.shape[0] // subject.shape[0], 1, 1, 1)  # CFG batch
        kwargs["cross_attention_kwargs"] = extra or None
        return forward(torch.cat([sample, subject], dim=1), timestep, encoder_hidden_states,
                       **kwargs)

    unet.forward = with_subject


def light_gradient(width: int, height: int, azimuth: float, elevation: float,
                   colour: np.ndarray) -> np.ndarray:
    """The starting picture: bright on the side the light comes from (in the image plane),
    dark on the other, in the light's colour; an even grey for light from the camera."""
    az, el = np.radians(azimuth), np.radians(elevation)
    direction = np.array([np.cos(el) * np.sin(az), -np.sin(el)])   # x right, y down
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (xx / max(width - 1, 1) - 0.5) * direction[0] + (yy / max(height - 1, 1) - 0.5) * \
        direction[1]
    span = max(np.abs(u).max(), 1e-6)
    ramp = 0.5 + 0.5 * u / span * min(1.0, np.linalg.norm(direction) * 1.5)
    return np.clip(ramp[:, :, None] * colour / colour.max(), 0, 1)


def starting_picture(width: int, height: int, settings: Settings) -> np.ndarray:
    """IC-Light's img2img start for a relight's settings: the gradient of its key light
    (a named setup's key, or the explicit one; even grey without one) in the key's
    colour."""
    lights = rig(settings).lights
    key = lights[0] if lights else None
    return light_gradient(width, height, key.azimuth if key else 0.0,
                          key.elevation if key else 0.0,
                          imaging.linear_to_srgb(settings.key.colour))


class ICLight:
    def __init__(self):
        self.pipelines = devices.PipelineCache(size=1)

    def pipeline(self, variant: str = "fc"):
        name, offsets, channels = VARIANTS[variant]
        base, light = models.require("sd15"), models.require(name)
        device, dtype = devices.pick()

        def load():
            import safetensors.torch
            from diffusers import StableDiffusionImg2ImgPipeline, UNet2DConditionModel

            variant = weights_variant(base)
            unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", variant=variant,
                                                        local_files_only=True)
            widen_conv_in(unet, channels)
            merge_offsets(unet, safetensors.torch.load_file(str(light / offsets)))
            concat_forward(unet)
            pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
                base, unet=unet, variant=variant, local_files_only=True, safety_checker=None,
                requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            return pipe.to(device=device, dtype=dtype)

        return self.pipelines.get(f"{name}:{device}:{dtype}", load)

    @staticmethod
    def _latent(pipe, rgb: np.ndarray):
        import torch

        with torch.no_grad():
            pixels = torch.from_numpy(rgb.transpose(2, 0, 1)[None] * 2 - 1)
            pixels = pixels.to(device=pipe.vae.device, dtype=pipe.vae.dtype)
            return pipe.vae.encode(pixels).latent_dist.mode() * pipe.vae.config.scaling_factor

    def _diffuse(self, pipe, start: np.ndarray, concat, prompt: str, strength: float,
                 steps: int, seed: int, progress, span: tuple[float, float]) -> np.ndarray:
        """img2img from `start` with the conditions appended to the UNet's input."""
        import torch
        from PIL import Image

        runs = max(1, int(steps * strength))
        h, w = start.shape[:2]
        with devices.out_of_memory_as_error(self.pipelines, f"{w}x{h}"):
            return pipe(prompt=prompt, negative_prompt="lowres, bad anatomy, worst quality",
                        image=Image.fromarray(imaging.from_float(start, "u8")),
                        strength=strength, num_inference_steps=steps, guidance_scale=2.0,
                        generator=torch.Generator("cpu").manual_seed(seed),
                        cross_attention_kwargs={"concat": concat},
                        callback_on_step_end=devices.step_callback(progress, runs, *span),
                        output_type="np").images[0].astype(np.float32)

    def match_background(self, composite: np.ndarray, alpha: np.ndarray,
                         background: np.ndarray, params: dict, progress) -> np.ndarray:
        """The subject (alpha) of `composite` relit by the background-conditioned model to
        sit in `background`; RGB float at composite's size (only the subject is meant to be
        used)."""
        import torch

        h, w = composite.shape[:2]
        tw, th = work_size(w, h, 64)
        small = imaging.resize(composite, tw, th)
        matte = cv2.resize(alpha, (tw, th))[:, :, None]
        progress(0.6, "loading IC-Light (background-conditioned)")
        pipe = self.pipeline("fbc")
        devices.save_memory(pipe, max(tw, th))
        subject = small * matte + 0.5 * (1 - matte)
        concat = torch.cat([self._latent(pipe, subject),
                            self._latent(pipe, imaging.resize(background, tw, th))], dim=1)
        out = self._diffuse(pipe, small, concat, "portrait photo, detailed face, " +
                            params["prompt"], 0.7, params["steps"], params["seed"], progress,
                            (0.62, 0.9))
        return np.clip(imaging.upsample_with_detail(out, composite), 0, 1)

    def render(self, samples: np.ndarray, settings: Settings, progress, memo=None,
               matte=None) -> Lighting:
        """Relight a layer region (samples as they are). The key light of the rig (a named
        setup's, or the parameters') sets the starting gradient; `memo` is not used:
        every run is a new diffusion. `matte()` gives the subject's alpha at the region's
        size (without it, the default matting engine's own)."""
        rgb = np.clip(imaging.to_float(samples[:, :, :3]), 0, 1)
        h, w = rgb.shape[:2]
        tw, th = work_size(w, h, 64)
        small = imaging.resize(rgb, tw, th)
        progress(0.05, "finding the subject")
        alpha = (get("matting", default("matting")).matte(small) if matte is None
                 else np.clip(imaging.resize(np.asarray(matte(), np.float32), tw, th), 0, 1)
                 )[:, :, None]
        subject = small * alpha + 0.5 * (1 - alpha)        # IC-Light's grey backdrop
        progress(0.1, "loading IC-Light")
        pipe = self.pipeline()
        devices.save_memory(pipe, max(tw, th))
        start = starting_picture(tw, th, settings)
        key = settings.key
        words = ["soft" if key.softness > 0.5 else "hard",
                 "warm" if key.temperature < 4500 else
                 "cool" if key.temperature > 7000 else "neutral"]
        out = self._diffuse(pipe, start, self._latent(pipe, subject),
                            f"portrait photo, detailed face, {words[0]} {words[1]} light", 0.9,
                            settings.steps, settings.seed, progress, (0.12, 0.9))
        progress(0.92, "restoring full resolution")
        relit = np.clip(imaging.upsample_with_detail(out, rgb), 0, 1)
        before, after = imaging.srgb_to_linear(rgb), imaging.srgb_to_linear(relit)
        if settings.keep_colors:   # the original's colour under the new light's brightness
            ratio = (after @ LUMA) / np.maximum(before @ LUMA, 1e-5)
            after = before * ratio[:, :, None]
        gain = after / np.maximum(before, 1e-4)
        smooth = cv2.GaussianBlur(gain, (0, 0), max(2.0, max(h, w) / 200))
        return Lighting(after, smooth)


register(EngineInfo(
    kind="relight", name="ic-light", label="IC-Light (SD 1.5, foreground-conditioned; GPU)",
    licence="Apache-2.0 (IC-Light offsets) + CreativeML OpenRAIL-M (SD 1.5)",
    weights="limner models pull sd15 ic-light-fc (ic-light-fbc: background.generate "
            "relights the subject to match)",
    load=ICLight, models=("sd15", "ic-light-fc"), extras=("ic-light-fbc",),
    install_hint="limner models pull sd15 ic-light-fc", packages=DIFFUSION_PACKAGES))
