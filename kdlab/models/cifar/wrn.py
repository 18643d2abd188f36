"""Wide ResNets WRN-d-w of the CRD/RepDistiller tables, registered into timm as ``cifar_wrn_<d>_<w>``.

Zagoruyko & Komodakis, "Wide Residual Networks", arXiv:1605.07146. Pre-activation blocks, widths 16/16w/32w/64w,
(d-4)/6 blocks per stage, dropout 0; a port of RepDistiller's ``models/wrn.py`` with its module names, so its
checkpoints load. Because the blocks are pre-activation, the stage taps are the raw block sums (RepDistiller's
``feat[1..3]``) and the final BN-ReLU is ``final_norm``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from timm.models import register_model
from torch import Tensor, nn

from kdlab.models.cifar._timm_api import CifarNet, create, feature, init_weights


class BasicBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3; the shortcut is a 1x1 conv of the activated input when widths differ."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, 1, 1, bias=False)
        # camelCase as in RepDistiller, so its state-dict keys match
        self.convShortcut = None if in_chs == out_chs else nn.Conv2d(in_chs, out_chs, 1, stride, 0, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        act = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(act))))
        return out + (x if self.convShortcut is None else self.convShortcut(act))


class NetworkBlock(nn.Module):
    """One stage: ``depth`` blocks under ``.layer`` (RepDistiller's wrapper, kept for its keys); the first strides."""

    def __init__(self, depth: int, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *(BasicBlock(out_chs if i else in_chs, out_chs, stride if i == 0 else 1) for i in range(depth))
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(CifarNet):
    """WRN-``depth``-``widen_factor``: stem conv, three stages, final BN-ReLU, pooled linear head."""

    def __init__(self, depth: int, widen_factor: int, num_classes: int = 100, in_chans: int = 3) -> None:
        super().__init__(num_classes, in_chans)
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4 (10, 16, 22, 28, 40, ...), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.num_features = widths[3]
        self.fc = nn.Linear(widths[3], num_classes)
        self.feature_info = [
            feature(widths[0], 1, "conv1"),
            *(feature(w, 2**i, f"block{i + 1}") for i, w in enumerate(widths[1:])),
        ]
        init_weights(self)
        nn.init.zeros_(self.fc.bias)  # RepDistiller zeroes the WRN head's bias only

    def taps(self, x: Tensor) -> Iterator[Tensor]:
        x = self.conv1(x)
        yield x
        for block in (self.block1, self.block2, self.block3):
            x = block(x)
            yield x

    def final_norm(self, x: Tensor) -> Tensor:
        return self.relu(self.bn1(x))


def _wrn(name: str, depth: int, widen_factor: int, pretrained: bool, kwargs: dict[str, Any]) -> CifarNet:
    return create(WideResNet, name, pretrained, depth=depth, widen_factor=widen_factor, **kwargs)


@register_model
def cifar_wrn_16_1(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _wrn("cifar_wrn_16_1", 16, 1, pretrained, kwargs)


@register_model
def cifar_wrn_16_2(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _wrn("cifar_wrn_16_2", 16, 2, pretrained, kwargs)


@register_model
def cifar_wrn_40_1(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _wrn("cifar_wrn_40_1", 40, 1, pretrained, kwargs)


@register_model
def cifar_wrn_40_2(pretrained: bool = False, **kwargs: Any) -> CifarNet:
    return _wrn("cifar_wrn_40_2", 40, 2, pretrained, kwargs)
