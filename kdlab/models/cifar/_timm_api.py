"""timm's model API for the CIFAR nets, so ``timm.create_model`` and kdlab's taps treat them like any timm model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from timm.models._features import feature_take_indices
from torch import Tensor, nn

from kdlab.errors import ConfigError

_TIMM_BOOKKEEPING = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def feature(num_chs: int, reduction: int, module: str) -> dict[str, Any]:
    """One ``feature_info`` entry in timm's format (``reduction`` is relative to the input)."""
    return {"num_chs": num_chs, "reduction": reduction, "module": module}


def init_weights(model: nn.Module, linear_std: float | None = None) -> None:
    """RepDistiller's init: He-normal (fan-out) convs with zero bias, BN at 1/0, and N(0, ``linear_std``) linears
    with zero bias when ``linear_std`` is given (else PyTorch's default)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


class CifarNet(nn.Module):
    """Base class: timm's classifier and feature API over a subclass's ``taps`` generator.

    Subclasses keep RepDistiller's module names (so its checkpoints load as they are), set ``feature_info`` (stem,
    then each stage) and ``num_features``, and name their final ``nn.Linear`` in ``classifier_path``.
    """

    classifier_path = "fc"
    feature_info: list[dict[str, Any]]
    num_features: int

    def __init__(self, num_classes: int, in_chans: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans

    def taps(self, x: Tensor) -> Iterator[Tensor]:
        """Yield the stem output, then each stage output; lazily, so ``stop_early`` skips the later stages."""
        raise NotImplementedError

    def final_norm(self, x: Tensor) -> Tensor:
        """The norm a pre-activation net applies to its last stage; identity for the others."""
        return x

    def head_conv(self, x: Tensor) -> Tensor:
        """The 1x1 conv some nets run between the last stage and the pooling; identity for the others."""
        return x

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """As timm's: the maps at ``indices`` of ``feature_info`` (int = last n, None = all), in forward order.

        ``norm`` applies ``final_norm`` to the last stage's map; the final map is returned only when every stage ran.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        last = len(self.feature_info) - 1
        take, max_index = feature_take_indices(len(self.feature_info), indices)
        intermediates = []
        for i, tap in enumerate(self.taps(x)):
            if i in take:
                intermediates.append(self.final_norm(tap) if norm and i == last else tap)
            if (stop_early or intermediates_only) and i == max_index:
                break
        if intermediates_only:
            return intermediates
        return (self.head_conv(self.final_norm(tap)) if i == last else tap), intermediates

    def forward_features(self, x: Tensor) -> Tensor:
        *_, last = self.taps(x)
        return self.head_conv(self.final_norm(last))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Global average pool (what RepDistiller's fixed-size pools do at 32x32), then the classifier."""
        x = x.mean((2, 3))
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier_path)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh ``num_classes`` head (``nn.Identity`` for 0); only average pooling exists here."""
        if global_pool not in (None, "", "avg"):
            raise ValueError(f"{type(self).__name__} only supports global_pool='avg', got {global_pool!r}")
        parent, _, name = self.classifier_path.rpartition(".")
        head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        setattr(self.get_submodule(parent), name, head)
        self.num_classes = num_classes


def create(model_cls: Callable[..., CifarNet], name: str, pretrained: bool, **kwargs: Any) -> CifarNet:
    """What every ``@register_model`` entry does: refuse ``pretrained``, drop timm's bookkeeping kwargs, build."""
    if pretrained:
        raise ConfigError(
            f"{name} has no pretrained weights in timm: build it with pretrained=false and load a checkpoint "
            "(a teacher config's `checkpoint`, or timm.create_model(..., checkpoint_path=...))"
        )
    for key in _TIMM_BOOKKEEPING:
        kwargs.pop(key, None)
    model = model_cls(**kwargs)
    model.pretrained_cfg = model.default_cfg = {
        "architecture": name,
        "num_classes": model.num_classes,
        "input_size": (model.in_chans, 32, 32),
        "classifier": model.classifier_path,
    }
    return model
