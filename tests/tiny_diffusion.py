"""Tiny Stable Diffusion pipelines with the real architectures (UNet, VAE, CLIP text
encoder, byte-level BPE tokenizer), random weights, saved with save_pretrained so the
engine loads them through the very code path users run. Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path


def _bytes_to_unicode() -> list[str]:
    """CLIP's byte alphabet: every byte as a printable character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer(folder: Path) -> int:
    """vocab.json + merges.txt for a CLIPTokenizer; returns the vocabulary size."""
    alphabet = _bytes_to_unicode()
    merges = ["o r", "i n", "t h", "a n", "e r", "or t", "p a", "pa in", "ort r", "ortr a"]
    tokens = alphabet + [c + "</w>" for c in alphabet]
    tokens += ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(tokens)


#: the architectures' sizes: tiny for the tests, SD 1.5's own for the benchmark
TINY = {
    "text": dict(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                 num_hidden_layers=2, projection_dim=32),
    "unet": dict(sample_size=16, layers_per_block=1, block_out_channels=(32, 64),
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                 attention_head_dim=8, norm_num_groups=32),
    "vae": dict(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=32, sample_size=64),
    "min_vocab": 0, "steps_offset": 0}
SD15 = {
    "text": dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                 num_hidden_layers=12),
    "unet": dict(sample_size=64, cross_attention_dim=768),
    "vae": dict(block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, sample_size=512),
    "min_vocab": 49408, "steps_offset": 1}


def build(folder: Path, inpaint: bool = False, shapes: dict = TINY) -> Path:
    """An img2img or inpainting pipeline of the given sizes, random weights, saved."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionImg2ImgPipeline,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    vocab = write_tokenizer(folder / "_tokenizer")
    tokenizer = CLIPTokenizer(str(folder / "_tokenizer" / "vocab.json"),
                              str(folder / "_tokenizer" / "merges.txt"), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        **shapes["text"], vocab_size=max(vocab, shapes["min_vocab"]),
        max_position_embeddings=77, bos_token_id=vocab - 2, eos_token_id=vocab - 1,
        pad_token_id=vocab - 1))
    unet = UNet2DConditionModel(**shapes["unet"], in_channels=9 if inpaint else 4,
                                out_channels=4)
    vae = AutoencoderKL(**shapes["vae"], in_channels=3, out_channels=3, latent_channels=4)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=shapes["steps_offset"])
    cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionImg2ImgPipeline
    pipe = cls(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
               scheduler=scheduler, safety_checker=None, feature_extractor=None,
               requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def build_iclight_offsets(sd15: Path, folder: Path, variant: str = "fc",
                          scale: float = 0.01) -> Path:
    """Small random offsets with the shapes of the pipeline's UNet widened as IC-Light's
    variant is (8 or 12 input channels), saved under IC-Light's file name."""
    import safetensors.torch
    import torch
    from diffusers import UNet2DConditionModel
    from limner.engines.iclight import VARIANTS, widen_conv_in

    _, file_name, channels = VARIANTS[variant]
    unet = UNet2DConditionModel.from_pretrained(sd15, subfolder="unet")
    widen_conv_in(unet, channels)
    generator = torch.Generator().manual_seed(1)
    offsets = {k: scale * torch.randn(v.shape, generator=generator)
               for k, v in unet.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(offsets, str(folder / file_name))
    return folder


def build_controlnet(sd15: Path, folder: Path,
                     conditioning_channels: tuple[int, ...] = (16, 32)) -> Path:
    """A ControlNet made from the pipeline's UNet (diffusers' own from_unet), with random
    zero-convolutions so it really changes the result. The conditioning embedding
    downsamples as the VAE does: the tiny VAE halves (16, 32), SD 1.5's eighths
    (16, 32, 96, 256)."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(2)
    controlnet = ControlNetModel.from_unet(
        UNet2DConditionModel.from_pretrained(sd15, subfolder="unet"),
        conditioning_embedding_out_channels=conditioning_channels)
    with torch.no_grad():
        for block in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            block.weight.normal_(0, 0.05)
    controlnet.save_pretrained(folder)
    return folder


ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")


def build_lcm_lora(sd15: Path, folder: Path, rank: int = 4,
                   targets: tuple[str, ...] = ATTENTION) -> Path:
    """A random LoRA on the pipeline's UNet (its attention by default), saved as
    LCM-LoRA's file."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from limner.engines.diffusion import LCM_FILE
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(3)
    unet = UNet2DConditionModel.from_pretrained(sd15, subfolder="unet")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                target_modules=list(targets)))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers,
                                              weight_name=LCM_FILE, safe_serialization=True)
    return folder
