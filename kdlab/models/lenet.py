"""LeNet-5 as in DAFL's MNIST experiments (Chen et al. ICCV 2019, arXiv:1904.01186, §4.1): the teacher LeNet-5 and
the student LeNet-5-half (every layer half as wide), after LeCun et al. 1998 with ReLU and max pooling.

32×32 input (MNIST resized, ``data.image_size=32``): conv5 → pool → conv5 → pool → conv5 (1×1) → fc → fc.
Not a timm model: configs name it with ``_target_: kdlab.models.lenet.LeNet5``. It exposes timm's head API
(``forward_features`` / ``forward_head`` / ``get_classifier``) so logit methods work and DAFL's activation loss reads
the flattened conv5 output (``forward_head(pre_logits=True)``), the feature DAFL's code uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from kdlab.errors import ConfigError

LENET5_WIDTHS = (6, 16, 120, 84)  # conv1, conv2, conv3 channels; fc hidden units


class LeNet5(nn.Module):
    """LeNet-5 with configurable widths: ``(6, 16, 120, 84)`` is LeNet-5, ``(3, 8, 60, 42)`` LeNet-5-half."""

    def __init__(
        self, num_classes: int = 10, in_chans: int = 1, image_size: int = 32, widths: Sequence[int] = LENET5_WIDTHS
    ) -> None:
        super().__init__()
        c1, c2, c3, hidden = (int(w) for w in widths) if len(widths) == 4 else (0, 0, 0, 0)
        if min(c1, c2, c3, hidden) < 1:
            raise ConfigError(f"LeNet5 widths must be 4 positive ints (conv1, conv2, conv3, fc), got {list(widths)}")
        if image_size != 32:
            raise ConfigError(f"LeNet5 needs 32x32 inputs: set data.image_size=32, got {image_size}")
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, c1, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 5), nn.ReLU(inplace=True), nn.Flatten(),
        )  # fmt: skip
        self.num_features = c3
        self.head = nn.Sequential(nn.Linear(c3, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward_features(self, x: Tensor) -> Tensor:
        """The flattened conv3 output, shape ``(N, widths[2])``."""
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
