"""The diffusion style engine: Stable Diffusion 1.5 img2img, or inpainting when there is a
selection, with the style presets as prompts. Its weights come from the model manager
(`limner models pull sd15 sd15-inpaint`); it is meant for machines with a GPU (a 512 px
img2img takes minutes on a laptop CPU), and reports every denoising step as progress, so a
cancel stops it within one step."""

from __future__ import annotations

import cv2
import numpy as np

from .. import devices, models, protocol
from ..protocol import ProtocolError
from . import EngineInfo, get, register
from .face import face_mask
from .style import _resize, _upsample

#: SD 1.5 works best near 512 px; up to this side before the photo's detail is put back
WORK_SIDE = 768
PROMPTS = {
    "oil painting": "an oil painting portrait, visible brush strokes, impasto, rich colours",
    "watercolour": "a watercolour portrait, soft washes of colour, white paper texture",
    "impressionist": "an impressionist portrait painting, broken colour, dappled light",
    "pencil sketch": "a graphite pencil sketch portrait, fine hatching, white paper",
    "charcoal": "a charcoal drawing portrait, smudged tones, dramatic contrast",
    "pop art": "a pop art portrait, flat bold colours, halftone dots, comic style",
}
NEGATIVE = "deformed face, distorted features, extra eyes, blurry, lowres, watermark"


class DiffusionStyle:
    def __init__(self):
        self.pipelines = devices.PipelineCache()

    def pipeline(self, kind: str):
        """The img2img or inpainting pipeline, loaded once, on the chosen device."""
        name = "sd15" if kind == "img2img" else "sd15-inpaint"
        path = models.require(name)
        device, dtype = devices.pick()

        def load():
            from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

            cls = StableDiffusionImg2ImgPipeline if kind == "img2img" else \
                StableDiffusionInpaintPipeline
            fp16 = any(p.name.endswith(".fp16.safetensors") for p in path.rglob("*"))
            pipe = cls.from_pretrained(path, torch_dtype=dtype, local_files_only=True,
                                       variant="fp16" if fp16 else None, safety_checker=None,
                                       requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            return pipe.to(device)

        return self.pipelines.get(f"{name}:{device}:{dtype}", load)

    def stylize(self, rgb: np.ndarray, mask, params: dict, reference, progress) -> np.ndarray:
        import torch
        from PIL import Image

        if params["preset"] == "reference":
            raise ProtocolError(protocol.E_BAD_PARAMETER,
                                "the diffusion engine has no reference mode; use the classic "
                                "engine to copy a reference picture's style")
        strength, steps = params["strength"], params["steps"]
        if strength == 0:
            return rgb
        h, w = rgb.shape[:2]
        scale = min(1.0, WORK_SIDE / max(h, w))
        tw, th = (max(64, round(v * scale / 8) * 8) for v in (w, h))
        small = _resize(rgb, tw, th)
        kind = "img2img" if mask is None else "inpaint"
        progress(0.08, "loading the diffusion model")
        pipe = self.pipeline(kind)
        devices.save_memory(pipe, max(tw, th))
        runs = max(1, min(steps, int(steps * strength)))   # img2img skips the first steps
        args = dict(prompt=PROMPTS[params["preset"]], negative_prompt=NEGATIVE,
                    image=Image.fromarray((small * 255 + 0.5).astype(np.uint8)),
                    strength=strength, num_inference_steps=steps, guidance_scale=7.0,
                    generator=torch.Generator("cpu").manual_seed(params["seed"]),
                    callback_on_step_end=devices.step_callback(progress, runs, 0.1, 0.9),
                    output_type="np")
        if kind == "inpaint":
            args.update(mask_image=Image.fromarray(cv2.resize(mask, (tw, th))), height=th,
                        width=tw)
        with devices.out_of_memory_as_error(self.pipelines, f"{tw}x{th}"):
            out = pipe(**args).images[0].astype(np.float32)
        if params["face_detail"] > 0:   # a little of the photo on faces keeps the likeness
            faces = get("face", "mediapipe").faces(small)
            weight = 0.4 * params["face_detail"] * face_mask(small.shape[:2], faces)[:, :, None]
            out = out * (1 - weight) + small * weight
        progress(0.92, "restoring full resolution")
        return np.clip(_upsample(out, rgb), 0, 1)


register(EngineInfo(
    kind="style", name="diffusion", label="Stable Diffusion 1.5 img2img / inpainting (GPU)",
    licence="CreativeML OpenRAIL-M (SD 1.5 weights)",
    weights="limner models pull sd15 (and sd15-inpaint for selections)",
    load=DiffusionStyle, find_weights=lambda: models.local_path("sd15"),
    install_hint="limner models pull sd15"))
