"""Stable Diffusion 1.5 for the style engine "diffusion" and for generated backgrounds.

Style is img2img, or inpainting when there is a selection, with the presets as prompts.
The photo's structure is held by ControlNet lineart when its weights are pulled (the lines
come from the photo itself), and LCM-LoRA gives a few-step mode. Every model comes from the
model manager (`limner models pull sd15 sd15-inpaint controlnet-lineart lcm-lora-sd15`);
this is meant for machines with a GPU (a 512 px img2img takes minutes on a laptop CPU).
Every denoising step is reported as progress, so a cancel stops it within one step."""

from __future__ import annotations

import cv2
import numpy as np

from .. import devices, imaging, models, protocol
from ..protocol import ProtocolError
from . import DIFFUSION_PACKAGES, EngineInfo, get, register
from .face import face_mask
from .style import dodge_lines

#: SD 1.5 works best near 512 px; up to this side before the photo's detail is put back
WORK_SIDE = 768
#: LCM-LoRA is distilled for 2-8 steps; more only costs time
FAST_MAX_STEPS = 8
LCM_FILE = "pytorch_lora_weights.safetensors"
PROMPTS = {
    "oil painting": "an oil painting portrait, visible brush strokes, impasto, rich colours",
    "watercolour": "a watercolour portrait, soft washes of colour, white paper texture",
    "impressionist": "an impressionist portrait painting, broken colour, dappled light",
    "pencil sketch": "a graphite pencil sketch portrait, fine hatching, white paper",
    "charcoal": "a charcoal drawing portrait, smudged tones, dramatic contrast",
    "pop art": "a pop art portrait, flat bold colours, halftone dots, comic style",
}
NEGATIVE = "deformed face, distorted features, extra eyes, blurry, lowres, watermark"


def lineart(rgb: np.ndarray) -> np.ndarray:
    """ControlNet lineart's condition from the photo: white lines on black (the sketch
    preset's dodge lines, denoised first so skin texture does not draw)."""
    smooth = cv2.bilateralFilter(imaging.from_float(rgb, "u8"), 7, 40, 5)
    grey = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    lines = 1 - dodge_lines(grey, 1.5)
    lines = np.clip(lines / max(float(np.percentile(lines, 99.5)), 1e-3), 0, 1)
    return np.repeat(imaging.from_float(lines, "u8")[:, :, None], 3, axis=2)


def work_size(w: int, h: int, multiple: int = 8) -> tuple[int, int]:
    """The size SD works at: at most WORK_SIDE, a multiple of the latent grid, same shape."""
    scale = min(1.0, WORK_SIDE / max(h, w))
    return tuple(max(64, round(v * scale / multiple) * multiple) for v in (w, h))


class StableDiffusion:
    def __init__(self):
        self.pipelines = devices.PipelineCache()

    @staticmethod
    def plan(params: dict, inpaint: bool) -> list[str]:
        """The models a job will use: the base, plus ControlNet when structure is asked for
        and its weights are here, plus LCM-LoRA in fast mode (required then)."""
        names = ["sd15-inpaint" if inpaint else "sd15"]
        if params.get("structure", 0) > 0 and models.local_path("controlnet-lineart"):
            names.append("controlnet-lineart")
        if params.get("fast"):
            names.append("lcm-lora-sd15")
        return names

    def pipeline(self, names: list[str]):
        """The pipeline for those models, loaded once, on the chosen device."""
        paths = {name: models.require(name) for name in names}
        device, dtype = devices.pick()

        def load():
            import diffusers

            inpaint, control = "sd15-inpaint" in names, "controlnet-lineart" in names
            cls = getattr(diffusers, "StableDiffusion" + ("ControlNet" if control else "") +
                          ("InpaintPipeline" if inpaint else "Img2ImgPipeline"))
            extra = {}
            if control:
                extra["controlnet"] = diffusers.ControlNetModel.from_pretrained(
                    paths["controlnet-lineart"], torch_dtype=dtype, local_files_only=True,
                    variant=weights_variant(paths["controlnet-lineart"]))
            base = paths[names[0]]
            pipe = cls.from_pretrained(base, torch_dtype=dtype, local_files_only=True,
                                       variant=weights_variant(base), safety_checker=None,
                                       requires_safety_checker=False, **extra)
            if "lcm-lora-sd15" in names:
                pipe.load_lora_weights(paths["lcm-lora-sd15"], weight_name=LCM_FILE)
                pipe.fuse_lora()
                pipe.scheduler = diffusers.LCMScheduler.from_config(pipe.scheduler.config)
            pipe.set_progress_bar_config(disable=True)
            return pipe.to(device)

        return self.pipelines.get(f"{'+'.join(names)}:{device}:{dtype}", load)

    def diffuse(self, rgb: np.ndarray, mask, prompt: str, params: dict, strength: float,
                progress, span: tuple[float, float] = (0.1, 0.9),
                keep_detail: bool = True) -> np.ndarray:
        """One img2img (mask None) or inpainting run at the working size; `mask` marks
        what may change (u8, 255 = repaint). Returns RGB float at rgb's size, with the
        photo's finer detail put back (keep_detail) or plainly scaled."""
        import torch
        from PIL import Image

        h, w = rgb.shape[:2]
        tw, th = work_size(w, h)
        small = imaging.resize(rgb, tw, th)
        names = self.plan(params, mask is not None)
        progress(span[0], "loading " + " + ".join(names))
        pipe = self.pipeline(names)
        devices.save_memory(pipe, max(tw, th))
        fast = params.get("fast", False)
        steps = min(params["steps"], FAST_MAX_STEPS) if fast else params["steps"]
        runs = max(1, min(steps, int(steps * strength)))    # img2img skips the first steps
        args = dict(prompt=prompt, image=Image.fromarray(imaging.from_float(small, "u8")),
                    strength=strength,
                    num_inference_steps=steps,
                    generator=torch.Generator("cpu").manual_seed(params["seed"]),
                    callback_on_step_end=devices.step_callback(progress, runs, *span),
                    output_type="np")
        if fast:   # LCM is distilled without classifier-free guidance: no negative prompt
            args["guidance_scale"] = 1.0
        else:
            args.update(guidance_scale=7.0, negative_prompt=NEGATIVE)
        if mask is not None:
            args.update(mask_image=Image.fromarray(cv2.resize(mask, (tw, th))), height=th,
                        width=tw)
        if "controlnet-lineart" in names:
            args["control_image"] = Image.fromarray(lineart(small))
            args["controlnet_conditioning_scale"] = float(params["structure"])
        with devices.out_of_memory_as_error(self.pipelines, f"{tw}x{th}"):
            out = pipe(**args).images[0].astype(np.float32)
        return (imaging.upsample_with_detail(out, rgb) if keep_detail
                else imaging.resize(out, w, h))

    def stylize(self, rgb: np.ndarray, mask, params: dict, reference, progress) -> np.ndarray:
        if params["preset"] == "reference":
            raise ProtocolError(protocol.E_BAD_PARAMETER,
                                "the diffusion engine has no reference mode; use the classic "
                                "engine to copy a reference picture's style")
        if params["strength"] == 0:
            return rgb
        out = self.diffuse(rgb, mask, PROMPTS[params["preset"]], params, params["strength"],
                           progress)
        if params["face_detail"] > 0:   # a little of the photo on faces keeps the likeness
            faces = get("face", "mediapipe").faces(rgb)
            weight = 0.4 * params["face_detail"] * face_mask(rgb.shape[:2], faces)[:, :, None]
            out = out * (1 - weight) + rgb * weight
        return np.clip(out, 0, 1)


def weights_variant(path) -> str | None:
    """"fp16" where only the half-precision files were pulled (what `models pull` takes)."""
    return "fp16" if any(p.name.endswith(".fp16.safetensors") for p in path.rglob("*")) \
        else None


register(EngineInfo(
    kind="style", name="diffusion", label="Stable Diffusion 1.5 img2img / inpainting (GPU)",
    licence="CreativeML OpenRAIL-M (SD 1.5 weights)",
    weights="limner models pull sd15 (sd15-inpaint for selections; controlnet-lineart to "
            "keep structure; lcm-lora-sd15 for fast mode)",
    load=StableDiffusion, models=(("sd15", "sd15-inpaint"),),
    extras=("controlnet-lineart", "lcm-lora-sd15"),
    install_hint="limner models pull sd15", packages=DIFFUSION_PACKAGES))
