"""Time the diffusion engine's pipelines with the real, full-size SD 1.5 architecture and
random weights (the arithmetic is the same as with real weights; nothing is downloaded),
and print a table (not a test):

    .venv/bin/python tests/benchmarks/bench_diffusion.py                  # GPU: 512 768 1024
    .venv/bin/python tests/benchmarks/bench_diffusion.py --sizes 256 --steps 2   # a CPU

Per-step latency is the median gap between step callbacks; end to end includes the text
encoder, VAE encode/decode and the image conversions; peak memory is the device's
(torch.cuda.max_memory_allocated) or, on a CPU, the process's peak resident size.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def build_full_size(kind: str, device, dtype):
    """SD 1.5's UNet, VAE and CLIP ViT-L/14 text encoder shapes, random weights."""
    import sys

    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionImg2ImgPipeline,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import tempfile

    from tiny_diffusion import write_tokenizer
    folder = Path(tempfile.mkdtemp())
    vocab = write_tokenizer(folder)
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                              model_max_length=77)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072,
                                        num_attention_heads=12, num_hidden_layers=12,
                                        vocab_size=max(vocab, 49408),
                                        max_position_embeddings=77, bos_token_id=vocab - 2,
                                        eos_token_id=vocab - 1, pad_token_id=vocab - 1))
    unet = UNet2DConditionModel(sample_size=64, in_channels=9 if kind == "inpaint" else 4,
                                out_channels=4, cross_attention_dim=768)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512),
                        down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4,
                        layers_per_block=2, sample_size=512)
    cls = StableDiffusionInpaintPipeline if kind == "inpaint" else StableDiffusionImg2ImgPipeline
    pipe = cls(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
               scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                       beta_end=0.012, clip_sample=False),
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device=device, dtype=dtype)


def peak_memory_mib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    import torch
    from limner import devices
    from PIL import Image

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 768, 1024])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--kinds", nargs="+", default=["img2img", "inpaint"])
    args = parser.parse_args()
    device, dtype = devices.pick()
    rows = []
    for kind in args.kinds:
        started = time.perf_counter()
        pipe = build_full_size(kind, device, dtype)
        built = time.perf_counter() - started
        for side in args.sizes:
            devices.save_memory(pipe, side)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3),
                                                                      dtype=np.uint8))
            extra = {"mask_image": Image.new("L", (side, side), 255), "height": side,
                     "width": side} if kind == "inpaint" else {}
            stamps = []

            def on_step(_p, _i, _t, tensors):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                stamps.append(time.perf_counter())
                return tensors

            start = time.perf_counter()
            pipe(prompt="an oil painting portrait", image=image, strength=1.0,
                 num_inference_steps=args.steps, guidance_scale=7.0,
                 generator=torch.Generator("cpu").manual_seed(0), callback_on_step_end=on_step,
                 output_type="np", **extra)
            total = time.perf_counter() - start
            gaps = np.diff(stamps) if len(stamps) > 1 else [stamps[0] - start]
            rows.append([kind, f"{side}x{side}", args.steps,
                         f"{statistics.median(gaps) * 1000:.0f} ms", f"{total:.1f} s",
                         f"{peak_memory_mib(device):.0f} MiB", f"{built:.0f} s"])
    from bench_backend import table  # same folder: one table printer for both

    table(f"SD 1.5 architecture, random weights, {device} {str(dtype).split('.')[-1]}",
          ["pipeline", "size", "steps", "per step (CFG)", "end to end", "peak memory", "build"],
          rows)

if __name__ == "__main__":
    main()
