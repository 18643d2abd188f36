"""A plain multilayer perceptron with timm's head API: the MNIST nets of Hinton et al. 2015 (arXiv:1503.02531, §3).

The paper's teacher is 784-1200-1200-10 with dropout and a max-norm weight constraint (as in Hinton et al. 2012,
arXiv:1207.0580); its student is 784-800-800-10 with no regularisation. Not a timm model: configs name it with
``_target_: kdlab.models.mlp.MLP``. It exposes ``forward_features`` / ``forward_head`` / ``get_classifier``, so logit
and embedding (relation) methods work; it has no ``feature_info``, because its hidden layers are vectors, not the
4-D maps that feature methods' connectors expect, so feature KD stops early with a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kdlab.errors import ConfigError


class MLP(nn.Module):
    """Flatten → [dropout] → (Linear → ReLU → dropout) per hidden layer → Linear classifier.

    Args:
        num_classes: outputs of the classifier.
        in_chans: image channels; the input is ``in_chans × image_size × image_size``, flattened.
        image_size: side of the square input image.
        hidden: widths of the hidden layers, e.g. ``[1200, 1200]``.
        dropout: drop probability after every hidden layer (0.5 in Hinton et al. 2012).
        input_dropout: drop probability on the input pixels (0.2 in Hinton et al. 2012).
        max_norm: upper bound on the L2 norm of each hidden unit's incoming weights, enforced before every
            training forward (i.e. after every optimiser step) and on switching to eval; ``None`` = no constraint.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        image_size: int = 28,
        hidden: Sequence[int] = (1200, 1200),
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        max_norm: float | None = None,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in hidden]
        if not widths or min(widths) < 1:
            raise ConfigError(f"MLP hidden must be a non-empty list of widths >= 1, got {list(hidden)}")
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= float(p) < 1.0:
                raise ConfigError(f"MLP {name} must be in [0, 1), got {p}")
        if max_norm is not None and not float(max_norm) > 0:
            raise ConfigError(f"MLP max_norm must be > 0 or null, got {max_norm}")
        self.max_norm = None if max_norm is None else float(max_norm)
        self.num_features = widths[-1]
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(float(input_dropout))]
        fan_in = in_chans * image_size * image_size
        for i, width in enumerate(widths):
            layers += [nn.Linear(fan_in, width), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.Dropout(float(dropout)))
            fan_in = width
        self.features = nn.Sequential(*layers)
        self.head_drop = nn.Dropout(float(dropout))  # the last hidden layer's dropout, timm's head_drop position
        self.head = nn.Linear(fan_in, num_classes)

    def _apply_max_norm(self) -> None:
        with torch.no_grad():
            for layer in self.features:
                if isinstance(layer, nn.Linear):
                    layer.weight.renorm_(p=2, dim=0, maxnorm=self.max_norm)

    def train(self, mode: bool = True) -> MLP:
        if not mode and self.max_norm is not None:
            self._apply_max_norm()  # the last optimiser step may have left a weight vector over the bound
        return super().train(mode)

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward_features(self, x: Tensor) -> Tensor:
        """The last hidden layer's activations (before its dropout), shape ``(N, hidden[-1])``."""
        if self.training and self.max_norm is not None:
            self._apply_max_norm()
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
