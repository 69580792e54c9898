"""Time every diffusion engine through its real code, on the real full-size architectures
with random weights (the arithmetic is the same as with real weights; nothing is
downloaded), and the BiRefNet matting engine when its model is pulled. Prints a table; it
is not a test.

    .venv/bin/python tests/benchmarks/bench_diffusion.py              # GPU: 512 768 1024
    .venv/bin/python tests/benchmarks/bench_diffusion.py --sizes 256 512 --steps 4   # CPU

The full-size models (SD 1.5 img2img and inpainting, ControlNet, LCM-LoRA, IC-Light fc and
fbc offsets: about 16 GB in fp32) are saved once into --models (default
.cache/bench-models) and loaded by the engines from there through LIMNER_MODELS_DIR, as a
user's pulled models are. Per step is the median gap between the engine's step progress
events; end to end is the whole operation on a portrait (matting, text encoder, VAE,
conversions; the model already loaded); peak memory is the device's
(torch.cuda.max_memory_allocated, reset per row) or, on a CPU, the process's peak
resident size (VmHWM, reset per row).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(HERE), str(HERE.parent)]


def build_models(folder: Path) -> None:
    """SD 1.5's UNet, VAE and CLIP ViT-L/14 text encoder shapes, random weights, saved as
    the model manager's folders (skipped where already built)."""
    from limner.engines.diffusion import LCM_FILE
    from limner.engines.iclight import VARIANTS
    from tiny_diffusion import (
        ATTENTION,
        SD15,
        build,
        build_controlnet,
        build_iclight_offsets,
        build_lcm_lora,
    )

    for name, inpaint in (("sd15", False), ("sd15-inpaint", True)):
        if not (folder / name / "model_index.json").exists():
            build(folder / name, inpaint, SD15)
    base = folder / "sd15"
    if not (folder / "controlnet-lineart" / "config.json").exists():
        build_controlnet(base, folder / "controlnet-lineart", (16, 32, 96, 256))
    if not (folder / "lcm-lora-sd15" / LCM_FILE).exists():   # LCM-LoRA's rank and targets
        build_lcm_lora(base, folder / "lcm-lora-sd15", 64,
                       (*ATTENTION, "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
                        "conv2", "conv_shortcut", "time_emb_proj"))
    for variant, (name, file_name, _) in VARIANTS.items():
        if not (folder / name / file_name).exists():
            build_iclight_offsets(base, folder / name, variant, scale=0.001)

class Peak:
    """Peak memory of the device (CUDA) or of this process (CPU), reset per row."""

    def __init__(self, device):
        self.device = device

    def reset(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            Path("/proc/self/clear_refs").write_text("5")

    def mib(self) -> float:
        import torch

        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated() / 2**20
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


SCENARIOS = {   # name: (operation, params, with a selection)
    "style img2img": ("style", {"engine": "diffusion", "structure": 0}, False),
    "style img2img + ControlNet": ("style", {"engine": "diffusion", "structure": 0.7}, False),
    "style inpaint (selection)": ("style", {"engine": "diffusion", "structure": 0}, True),
    "style fast (LCM-LoRA)": ("style", {"engine": "diffusion", "structure": 0, "fast": True},
                              False),
    "relight ic-light (fc)": ("relight", {"engine": "ic-light"}, False),
    "background.generate + fbc": ("background.generate", {"match_light": True}, False),
}


def portrait(side: int) -> np.ndarray:
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)


def run_scenario(name: str, side: int, steps: int, peak: Peak) -> list[str]:
    from limner import operations
    from limner.operations.base import Request

    op_id, params, selection = SCENARIOS[name]
    op = operations.get(op_id)
    params = op.validate({**params, "steps": steps, "face_detail": 0.0}
                         if op_id == "style" else {**params, "steps": steps})
    image = portrait(side)
    mask = None
    if selection:
        mask = np.zeros(image.shape[:2], np.uint8)
        mask[side // 8:-side // 8, side // 8:-side // 8] = 255
    stamps: list[float] = []

    def progress(_fraction, stage):
        if stage.startswith("step"):
            stamps.append(time.perf_counter())

    op.run(Request(image, mask, params, progress))            # load and warm up
    peak.reset()
    stamps.clear()
    start = time.perf_counter()
    op.run(Request(image, mask, params, progress))
    total = time.perf_counter() - start
    gaps = np.diff(stamps) if len(stamps) > 1 else [total]
    return [name, f"{side}x{side}", str(len(stamps)),
            f"{statistics.median(gaps) * 1000:.0f} ms", f"{total:.1f} s",
            f"{peak.mib():.0f} MiB"]


def run_birefnet(sides: list[int], peak: Peak) -> list[list[str]]:
    from limner import engines, models

    if models.local_path("birefnet-matting") is None:
        return [["matting birefnet", "-", "-", "-", "not pulled: limner models pull "
                 "birefnet-matting", "-"]]
    engine = engines.get("matting", "birefnet")
    rows = []
    for side in sides:
        rgb = portrait(side).astype(np.float32) / 255
        engine.matte(rgb)
        peak.reset()
        start = time.perf_counter()
        engine.matte(rgb)
        rows.append(["matting birefnet", f"{side}x{side}", "1", "-",
                     f"{time.perf_counter() - start:.2f} s", f"{peak.mib():.0f} MiB"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 768, 1024])
    parser.add_argument("--matting-sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS),
                        choices=list(SCENARIOS))
    parser.add_argument("--models", type=Path, default=ROOT / ".cache" / "bench-models")
    args = parser.parse_args()
    started = time.perf_counter()
    build_models(args.models)
    print(f"full-size random models in {args.models} ({time.perf_counter() - started:.0f} s)")
    users_models = os.environ.get("LIMNER_MODELS_DIR")
    os.environ.update(LIMNER_MODELS_DIR=str(args.models), HF_HUB_OFFLINE="1")
    from bench_backend import table  # same folder: one table printer for both
    from limner import devices

    device, dtype = devices.pick()
    peak = Peak(device)
    rows = [run_scenario(name, side, args.steps, peak)
            for name in args.scenarios for side in args.sizes]
    os.environ.pop("LIMNER_MODELS_DIR")       # BiRefNet only where really pulled
    if users_models:
        os.environ["LIMNER_MODELS_DIR"] = users_models
    rows += run_birefnet(args.matting_sizes, peak)
    table(f"Limner diffusion engines, full-size architectures with random weights, {device} "
          f"{str(dtype).split('.')[-1]}, {args.steps} steps asked",
          ["engine", "size", "steps run", "per step", "end to end", "peak memory"], rows)


if __name__ == "__main__":
    main()
