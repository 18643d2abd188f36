"""CIFAR VGG-BN nets of the CRD/RepDistiller tables, registered into timm as ``cifar_vgg<depth>``.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", arXiv:1409.1556.
RepDistiller's CIFAR variant (``models/vgg.py``, the ``*_bn`` nets its model dict uses): five conv-BN-ReLU blocks,
max-pool between the first four, no pool before the last block at 32x32, global average pool and one linear layer
(no FC stack). ``vgg8`` is its extra one-conv-per-block config. Module names follow that file, so its checkpoints
load. RepDistiller adds a fourth max-pool for 64x64 inputs only; it is left out here so ``feature_info`` holds for
every input size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch.nn.functional as F
from timm.models import register_model
from torch import Tensor, nn

from kdlab.models.cifar._timm_api import CifarNet, create, feature, init_weights

CONFIGS = {
    "vgg8": ((64,), (128,), (256,), (512,), (512,)),
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}

REDUCTIONS = (1, 2, 4, 8, 8)  # of block0..4: no pool before block4


def make_block(in_chs: int, widths: Sequence[int]) -> nn.Sequential:
    """conv3x3(bias)-BN-ReLU per width, minus the last ReLU, which the net applies (RepDistiller's layout)."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(in_chs, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        in_chs = w
    return nn.Sequential(*layers[:-1])


class CifarVGG(CifarNet):
    """VGG-BN with five conv blocks (``block0`` .. ``block4``); every block output is a tap."""

    classifier_path = "classifier"

    def __init__(self, config: Sequence[Sequence[int]], num_classes: int = 100, in_chans: int = 3) -> None:
        super().__init__(num_classes, in_chans)
        in_widths = [in_chans, *(block[-1] for block in config[:-1])]
        self.block0, self.block1, self.block2, self.block3, self.block4 = (
            make_block(i, widths) for i, widths in zip(in_widths, config, strict=True)
        )
        self.pool0, self.pool1, self.pool2 = (nn.MaxPool2d(2, 2) for _ in range(3))
        self.num_features = config[-1][-1]
        self.classifier = nn.Linear(self.num_features, num_classes)
        self.feature_info = [feature(c[-1], REDUCTIONS[i], f"block{i}") for i, c in enumerate(config)]
        init_weights(self, linear_std=0.01)

    def taps(self, x: Tensor) -> Iterator[Tensor]:
        x = F.relu(self.block0(x))
        yield x
        for pool, block in ((self.pool0, self.block1), (self.pool1, self.block2), (self.pool2, self.block3)):
            x = F.relu(block(pool(x)))
            yield x
        yield F.relu(self.block4(x))


def _vgg(name: str, pretrained: bool, kwargs: dict[str, Any]) -> CifarNet:
    return create(CifarVGG, f"cifar_{name}", pretrained, config=CONFIGS[name], **kwargs)


@register_model
def cifar_vgg8(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _vgg("vgg8", pretrained, kwargs)


@register_model
def cifar_vgg11(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _vgg("vgg11", pretrained, kwargs)


@register_model
def cifar_vgg13(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _vgg("vgg13", pretrained, kwargs)


@register_model
def cifar_vgg16(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _vgg("vgg16", pretrained, kwargs)


@register_model
def cifar_vgg19(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _vgg("vgg19", pretrained, kwargs)
