"""The CIFAR model zoo of the CRD/RepDistiller/mdistiller tables, registered into timm under ``cifar_*`` names.

Importing this package registers them: ``timm.create_model("cifar_resnet8x4", num_classes=100)``. Each net exposes
timm's feature API (``feature_info``, ``forward_intermediates``, ``forward_head``), so kdlab taps it like any timm
model, and keeps RepDistiller's module names, so its CIFAR-100 checkpoints load with ``load_state_dict``.
"""

from kdlab.models.cifar import mobilenetv2, resnet, shufflenet, vgg, wrn
from kdlab.models.cifar._timm_api import CifarNet

__all__ = ["CifarNet", "mobilenetv2", "resnet", "shufflenet", "vgg", "wrn"]
