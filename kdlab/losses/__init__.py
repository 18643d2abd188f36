"""Pure distillation loss functions: tensors in, scalar out, usable from any training loop."""

from kdlab.losses.feature import attention_transfer, hint_mse, nst, patient_loss, review_hcl
from kdlab.losses.mutual import dml_kl
from kdlab.losses.relation import cc, crd_nce, pkt, rkd_angle, rkd_distance, similarity_preserving
from kdlab.losses.response import (
    cs_kd,
    deit_hard_distillation,
    deit_soft_distillation,
    dist,
    dkd,
    dkd_nckd,
    dkd_tckd,
    kd_js,
    kd_kl,
    kd_reverse_kl,
    standardize_logits,
    tf_kd_virtual_teacher,
    top1_agreement,
)

__all__ = [
    "attention_transfer",
    "cc",
    "crd_nce",
    "cs_kd",
    "deit_hard_distillation",
    "deit_soft_distillation",
    "dist",
    "dkd",
    "dkd_nckd",
    "dkd_tckd",
    "dml_kl",
    "hint_mse",
    "kd_js",
    "kd_kl",
    "kd_reverse_kl",
    "nst",
    "patient_loss",
    "pkt",
    "review_hcl",
    "rkd_angle",
    "rkd_distance",
    "similarity_preserving",
    "standardize_logits",
    "tf_kd_virtual_teacher",
    "top1_agreement",
]
