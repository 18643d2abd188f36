"""Pure distillation loss functions: tensors in, scalar out, usable from any training loop."""

from kdlab.losses.feature import attention_transfer, hint_mse, nst, patient_loss
from kdlab.losses.relation import cc, crd_nce, pkt, rkd_angle, rkd_distance, similarity_preserving
from kdlab.losses.response import dist, dkd, dkd_nckd, dkd_tckd, kd_kl, top1_agreement

__all__ = [
    "attention_transfer",
    "cc",
    "crd_nce",
    "dist",
    "dkd",
    "dkd_nckd",
    "dkd_tckd",
    "hint_mse",
    "kd_kl",
    "nst",
    "patient_loss",
    "pkt",
    "rkd_angle",
    "rkd_distance",
    "similarity_preserving",
    "top1_agreement",
]
