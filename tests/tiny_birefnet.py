"""A tiny model in BiRefNet's packaging: the same file names, class names, config type and
auto_map as the ZhengPeng7/BiRefNet repositories, loaded as transformers remote code from
a local folder, offline. BiRefNet's own code cannot come with it (it lives in the hub
repository, and needs torchvision, which this machine's torch cannot import), so this
model is not BiRefNet's arithmetic: its last output is a known function of the picture,
20 * (luma - 0.5) as logits, so the test can check our pre- and post-processing exactly.
Like the hub class it has no post_init, so transformers 5's from_pretrained fails on it
as on the real one."""

from __future__ import annotations

import json
from pathlib import Path

CONFIG_PY = '''
from transformers import PretrainedConfig


class BiRefNetConfig(PretrainedConfig):
    model_type = "SegformerForSemanticSegmentation"

    def __init__(self, bb_pretrained=False, **kwargs):
        self.bb_pretrained = bb_pretrained
        super().__init__(**kwargs)
'''

MODEL_PY = '''
import torch
from torch import nn
from transformers import PreTrainedModel

from .BiRefNet_config import BiRefNetConfig


class BiRefNet(PreTrainedModel):
    config_class = BiRefNetConfig

    def __init__(self, bb_pretrained=True, config=BiRefNetConfig()):
        # the hub class's signature; like it, no post_init (transformers 5 wants one)
        super().__init__(config)
        self.coarse = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 1, 3, 2, 1))
        self.head = nn.Conv2d(3, 1, 1)

    def forward(self, x):
        # like BiRefNet in eval mode: predictions from coarse to fine, the last full size
        return [self.coarse(x), self.head(x)]
'''

LUMA = (0.299, 0.587, 0.114)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build(folder: Path) -> Path:
    import safetensors.torch
    import torch
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "BiRefNet_config.py").write_text(CONFIG_PY)
    (folder / "birefnet.py").write_text(MODEL_PY)
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["BiRefNet"], "model_type": "SegformerForSemanticSegmentation",
        "auto_map": {"AutoConfig": "BiRefNet_config.BiRefNetConfig",
                     "AutoModelForImageSegmentation": "birefnet.BiRefNet"},
        "bb_pretrained": False}))
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    cls = get_class_from_dynamic_module("birefnet.BiRefNet", folder)
    model = cls(bb_pretrained=False, config=config)
    with torch.no_grad():   # logits = 20 * (luma - 0.5) of the un-normalised picture
        weight = [20 * c * s for c, s in zip(LUMA, STD)]
        model.head.weight.copy_(torch.tensor(weight).view(1, 3, 1, 1))
        model.head.bias.fill_(20 * (sum(c * m for c, m in zip(LUMA, MEAN)) - 0.5))
    safetensors.torch.save_file(model.state_dict(), str(folder / "model.safetensors"))
    return folder
