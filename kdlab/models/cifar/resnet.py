"""CIFAR ResNets of the CRD/RepDistiller tables, registered into timm as ``cifar_resnet*``.

He et al., "Deep Residual Learning for Image Recognition", arXiv:1512.03385. Two variants, as RepDistiller has them:
the paper's 3-stage CIFAR net (``resnet8`` ... ``resnet110``; widths 16/16/32/64, or 32/64/128/256 for the ``x4``
nets), from RepDistiller's ``models/resnet.py``; and the ImageNet ResNet-50 with a 3x3 stride-1 stem and no max-pool
(``cifar_resnet50``), from its ``models/resnetv2.py``. Module names follow those files, so their checkpoints load.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch.nn.functional as F
from timm.models import register_model
from torch import Tensor, nn

from kdlab.models.cifar._timm_api import CifarNet, create, feature, init_weights


def conv_bn(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, bias=False), nn.BatchNorm2d(out_chs)]


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the (1x1 conv-BN when shapes change) shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(in_chs, out_chs, 3, stride)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = conv_bn(out_chs, out_chs, 3)
        reshape = stride != 1 or in_chs != out_chs
        self.downsample = nn.Sequential(*conv_bn(in_chs, out_chs, 1, stride)) if reshape else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1-3x3-1x1 bottleneck with 4x expansion (ResNet-50); RepDistiller names its projection ``shortcut``."""

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_chs = 4 * planes
        self.conv1, self.bn1 = conv_bn(in_chs, planes, 1)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3, stride)
        self.conv3, self.bn3 = conv_bn(planes, out_chs, 1)
        reshape = stride != 1 or in_chs != out_chs
        self.shortcut = nn.Sequential(*conv_bn(in_chs, out_chs, 1, stride)) if reshape else nn.Sequential()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def make_stage(
    block: type[BasicBlock | Bottleneck], in_chs: int, planes: int, depth: int, stride: int
) -> nn.Sequential:
    """``depth`` blocks of width ``planes`` (times the block's expansion); the first one strides and reshapes."""
    out_chs = planes * block.expansion
    return nn.Sequential(*(block(out_chs if i else in_chs, planes, stride if i == 0 else 1) for i in range(depth)))


class CifarResNet(CifarNet):
    """3-stage CIFAR ResNet of depth 6n+2: stem conv (``widths[0]``) and three stages of n BasicBlocks."""

    def __init__(self, depth: int, widths: Sequence[int], num_classes: int = 100, in_chans: int = 3) -> None:
        super().__init__(num_classes, in_chans)
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (8, 14, 20, ...), got {depth}")
        n = (depth - 2) // 6
        self.conv1, self.bn1 = conv_bn(in_chans, widths[0], 3)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_stage(BasicBlock, widths[0], widths[1], n, 1)
        self.layer2 = make_stage(BasicBlock, widths[1], widths[2], n, 2)
        self.layer3 = make_stage(BasicBlock, widths[2], widths[3], n, 2)
        self.num_features = widths[3]
        self.fc = nn.Linear(widths[3], num_classes)
        self.feature_info = [
            feature(widths[0], 1, "relu"),
            *(feature(w, 2**i, f"layer{i + 1}") for i, w in enumerate(widths[1:])),
        ]
        init_weights(self)

    def taps(self, x: Tensor) -> Iterator[Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        yield x
        for layer in (self.layer1, self.layer2, self.layer3):
            x = layer(x)
            yield x


class CifarResNet50(CifarNet):
    """ResNet-50 (3-4-6-3 bottlenecks) with a 3x3 stride-1 stem and no max-pool, as RepDistiller's ``ResNet50``."""

    classifier_path = "linear"

    def __init__(self, num_classes: int = 100, in_chans: int = 3) -> None:
        super().__init__(num_classes, in_chans)
        self.conv1, self.bn1 = conv_bn(in_chans, 64, 3)
        self.layer1 = make_stage(Bottleneck, 64, 64, 3, 1)
        self.layer2 = make_stage(Bottleneck, 256, 128, 4, 2)
        self.layer3 = make_stage(Bottleneck, 512, 256, 6, 2)
        self.layer4 = make_stage(Bottleneck, 1024, 512, 3, 2)
        self.num_features = 2048
        self.linear = nn.Linear(2048, num_classes)
        self.feature_info = [
            feature(64, 1, "bn1"),
            *(feature(256 * 2**i, 2**i, f"layer{i + 1}") for i in range(4)),
        ]
        init_weights(self)

    def taps(self, x: Tensor) -> Iterator[Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        yield x
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            yield x


def _resnet(name: str, depth: int, widths: Sequence[int], pretrained: bool, kwargs: dict[str, Any]) -> CifarNet:
    return create(CifarResNet, name, pretrained, depth=depth, widths=widths, **kwargs)


@register_model
def cifar_resnet8(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet8", 8, (16, 16, 32, 64), pretrained, kwargs)


@register_model
def cifar_resnet14(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet14", 14, (16, 16, 32, 64), pretrained, kwargs)


@register_model
def cifar_resnet20(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet20", 20, (16, 16, 32, 64), pretrained, kwargs)


@register_model
def cifar_resnet32(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet32", 32, (16, 16, 32, 64), pretrained, kwargs)


@register_model
def cifar_resnet44(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet44", 44, (16, 16, 32, 64), pretrained, kwargs)


@register_model
def cifar_resnet56(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet56", 56, (16, 16, 32, 64), pretrained, kwargs)


@register_model
def cifar_resnet110(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet110", 110, (16, 16, 32, 64), pretrained, kwargs)


@register_model
def cifar_resnet8x4(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet8x4", 8, (32, 64, 128, 256), pretrained, kwargs)


@register_model
def cifar_resnet32x4(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _resnet("cifar_resnet32x4", 32, (32, 64, 128, 256), pretrained, kwargs)


@register_model
def cifar_resnet50(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return create(CifarResNet50, "cifar_resnet50", pretrained, **kwargs)
