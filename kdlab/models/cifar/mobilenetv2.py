"""CIFAR MobileNetV2 of the CRD/RepDistiller tables (``mobile_half``), registered as ``cifar_mobilenetv2_half``.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", arXiv:1801.04381. RepDistiller's CIFAR
variant (``models/mobilenetv2.py``, from the RCO paper's code): width 0.5, expansion 6, the ImageNet stride plan
(stride-2 stem, so a 32x32 input ends at 2x2), a 1x1 expansion conv even in the t=1 block, and a 1280-wide head conv
at any width <= 1. Module names follow that file, so its checkpoints load. The taps are RepDistiller's ``feat[0..4]``:
the stem, then the ends of block groups 1, 2, 4 and 6 (linear bottleneck outputs, no ReLU).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from timm.models import register_model
from torch import Tensor, nn

from kdlab.models.cifar._timm_api import CifarNet, create, feature, init_weights

# (expansion, channels, blocks, first stride) per block group, as the paper's table 2
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
TAP_GROUPS = (1, 2, 4, 6)  # block groups whose output is a stage tap


def conv_bn_relu(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(out_chs), nn.ReLU(inplace=True)]


class InvertedResidual(nn.Module):
    """1x1 expand-BN-ReLU, 3x3 depthwise-BN-ReLU, 1x1 project-BN (linear); identity shortcut when shapes match."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        mid = in_chs * expand_ratio
        self.use_res_connect = stride == 1 and in_chs == out_chs
        self.conv = nn.Sequential(
            *conv_bn_relu(in_chs, mid, 1),
            *conv_bn_relu(mid, mid, 3, stride, groups=mid),
            nn.Conv2d(mid, out_chs, 1, bias=False),
            nn.BatchNorm2d(out_chs),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class CifarMobileNetV2(CifarNet):
    """Stem conv, seven inverted-residual groups (``blocks``), 1x1 head conv (``conv2``), linear classifier."""

    classifier_path = "classifier.0"

    def __init__(self, width_mult: float = 0.5, num_classes: int = 100, in_chans: int = 3) -> None:
        super().__init__(num_classes, in_chans)
        in_chs = int(32 * width_mult)
        self.conv1 = nn.Sequential(*conv_bn_relu(in_chans, in_chs, 3, 2))
        self.feature_info = [feature(in_chs, 2, "conv1")]
        self.blocks = nn.ModuleList()
        reduction = 2
        for i, (t, c, n, s) in enumerate(SETTINGS):
            out_chs, reduction = int(c * width_mult), reduction * s
            blocks = (InvertedResidual(out_chs if j else in_chs, out_chs, 1 if j else s, t) for j in range(n))
            self.blocks.append(nn.Sequential(*blocks))
            in_chs = out_chs
            if i in TAP_GROUPS:
                self.feature_info.append(feature(out_chs, reduction, f"blocks.{i}"))
        self.num_features = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = nn.Sequential(*conv_bn_relu(in_chs, self.num_features, 1))
        self.classifier = nn.Sequential(nn.Linear(self.num_features, num_classes))
        init_weights(self, linear_std=0.01)

    def taps(self, x: Tensor) -> Iterator[Tensor]:
        x = self.conv1(x)
        yield x
        for i, group in enumerate(self.blocks):
            x = group(x)
            if i in TAP_GROUPS:
                yield x

    def head_conv(self, x: Tensor) -> Tensor:
        return self.conv2(x)


@register_model
def cifar_mobilenetv2_half(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return create(CifarMobileNetV2, "cifar_mobilenetv2_half", pretrained, **kwargs)
