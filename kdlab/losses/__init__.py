"""Pure distillation loss functions: tensors in, scalar out, usable from any training loop."""

from kdlab.losses.feature import hint_mse
from kdlab.losses.relation import rkd_angle, rkd_distance
from kdlab.losses.response import kd_kl, top1_agreement

__all__ = ["hint_mse", "kd_kl", "rkd_angle", "rkd_distance", "top1_agreement"]
