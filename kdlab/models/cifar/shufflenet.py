"""CIFAR ShuffleNets V1 and V2 of the CRD/RepDistiller tables, registered into timm as ``cifar_shufflev1/v2``.

Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices",
arXiv:1707.01083, and Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
arXiv:1807.11164. RepDistiller's CIFAR variants (``models/ShuffleNetv1.py``, ``models/ShuffleNetv2.py``): a 1x1
24-channel stem at full resolution and no max-pool, three stages that each halve the resolution; V1 with 3 groups
(240/480/960 channels, 4/8/4 units), V2 at 1x (116/232/464 channels, 3/7/3 units plus a down-sampling unit each,
then a 1024-wide 1x1 head conv). Module names follow those files, so their checkpoints load. PyTorch's default
init, as there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import Tensor, nn

from kdlab.models.cifar._timm_api import CifarNet, create, feature

STEM_WIDTH = 24


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """[N, g*c, H, W] -> [N, c*g, H, W]: interleave the groups so the next grouped conv mixes them."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleV1Unit(nn.Module):
    """Grouped 1x1-BN-ReLU, shuffle, depthwise 3x3-BN-ReLU, grouped 1x1-BN; add (stride 1) or concat an avg-pooled
    input (stride 2), then ReLU. The first unit after the 24-channel stem uses an ungrouped first conv."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, groups: int) -> None:
        super().__init__()
        self.stride = stride
        mid = out_chs // 4
        self.g = 1 if in_chs == STEM_WIDTH else groups
        self.conv1 = nn.Conv2d(in_chs, mid, 1, groups=self.g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_chs, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_chs)

    def forward(self, x: Tensor) -> Tensor:
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.g)
        out = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(out)))))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, 2, 1)], 1))
        return F.relu(out + x)


class ShuffleV2Unit(nn.Module):
    """Split channels in half; 1x1-BN-ReLU, depthwise 3x3-BN, 1x1-BN-ReLU on one half; concat; shuffle."""

    def __init__(self, chs: int) -> None:
        super().__init__()
        half = chs // 2
        self.conv1 = nn.Conv2d(half, half, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = x.chunk(2, dim=1)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x2)))))
        return channel_shuffle(torch.cat([x1, F.relu(self.bn3(self.conv3(out)))], 1), 2)


class ShuffleV2Down(nn.Module):
    """Stride-2 unit: depthwise 3x3-BN, 1x1-BN-ReLU on the left; 1x1-BN-ReLU, depthwise 3x3-BN, 1x1-BN-ReLU on the
    right; concat (doubling the width); shuffle."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        mid = out_chs // 2
        self.conv1 = nn.Conv2d(in_chs, in_chs, 3, 2, 1, groups=in_chs, bias=False)
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv2 = nn.Conv2d(in_chs, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(in_chs, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: Tensor) -> Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = self.bn4(self.conv4(F.relu(self.bn3(self.conv3(x)))))
        return channel_shuffle(torch.cat([left, F.relu(self.bn5(self.conv5(right)))], 1), 2)


def v1_stage(in_chs: int, out_chs: int, depth: int, groups: int) -> nn.Sequential:
    """``depth`` V1 units; the first strides and concatenates its pooled input, so it adds ``out_chs - in_chs``."""
    units = (
        ShuffleV1Unit(out_chs if i else in_chs, out_chs - (0 if i else in_chs), 1 if i else 2, groups)
        for i in range(depth)
    )
    return nn.Sequential(*units)


def v2_stage(in_chs: int, out_chs: int, depth: int) -> nn.Sequential:
    """A down-sampling unit, then ``depth`` V2 units."""
    return nn.Sequential(ShuffleV2Down(in_chs, out_chs), *(ShuffleV2Unit(out_chs) for _ in range(depth)))


class CifarShuffleNet(CifarNet):
    """The shared frame: 1x1 24-channel stem conv-BN-ReLU (``conv1``, ``bn1``), then three stride-2 stages."""

    classifier_path = "linear"

    def __init__(self, stages: list[nn.Sequential], widths: Sequence[int], num_classes: int, in_chans: int) -> None:
        super().__init__(num_classes, in_chans)
        self.conv1 = nn.Conv2d(in_chans, STEM_WIDTH, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
        self.layer1, self.layer2, self.layer3 = stages
        self.feature_info = [
            feature(STEM_WIDTH, 1, "bn1"),
            *(feature(w, 2 ** (i + 1), f"layer{i + 1}") for i, w in enumerate(widths)),
        ]

    def taps(self, x: Tensor) -> Iterator[Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        yield x
        for layer in (self.layer1, self.layer2, self.layer3):
            x = layer(x)
            yield x


class CifarShuffleV1(CifarShuffleNet):
    """ShuffleNet V1, 3 groups: 240/480/960 channels, 4/8/4 units; pooled straight into the classifier."""

    def __init__(self, num_classes: int = 100, in_chans: int = 3) -> None:
        widths, depths = (240, 480, 960), (4, 8, 4)
        in_widths = (STEM_WIDTH, *widths[:-1])
        stages = [v1_stage(i, o, d, groups=3) for i, o, d in zip(in_widths, widths, depths, strict=True)]
        super().__init__(stages, widths, num_classes, in_chans)
        self.num_features = widths[-1]
        self.linear = nn.Linear(self.num_features, num_classes)


class CifarShuffleV2(CifarShuffleNet):
    """ShuffleNet V2 1x: 116/232/464 channels, 3/7/3 units after each down-sampling unit, a 1024-wide head conv."""

    def __init__(self, num_classes: int = 100, in_chans: int = 3) -> None:
        widths, depths = (116, 232, 464), (3, 7, 3)
        in_widths = (STEM_WIDTH, *widths[:-1])
        stages = [v2_stage(i, o, d) for i, o, d in zip(in_widths, widths, depths, strict=True)]
        super().__init__(stages, widths, num_classes, in_chans)
        self.num_features = 1024
        self.conv2 = nn.Conv2d(widths[-1], self.num_features, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(self.num_features)
        self.linear = nn.Linear(self.num_features, num_classes)

    def head_conv(self, x: Tensor) -> Tensor:
        return F.relu(self.bn2(self.conv2(x)))


@register_model
def cifar_shufflev1(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return create(CifarShuffleV1, "cifar_shufflev1", pretrained, **kwargs)


@register_model
def cifar_shufflev2(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return create(CifarShuffleV2, "cifar_shufflev2", pretrained, **kwargs)
