"""DAFL's generator losses: what a generator minimises so that a frozen teacher "recognises" its images.

Chen et al., "Data-Free Learning of Student Networks" (ICCV 2019, arXiv:1904.01186), §3.1-3.2. With teacher logits
``y_i`` and pre-classifier features ``f_i`` of the generated batch (n images):
``L_G = L_oh + α·L_a + β·L_ie`` (MNIST: α = 0.1, β = 5), where each loss below is one of the three terms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def dafl_one_hot_loss(teacher_logits: Tensor) -> Tensor:
    """``L_oh = (1/n) Σ_i CE(y_i, argmax y_i)``: images the teacher classifies confidently, as real ones are."""
    return F.cross_entropy(teacher_logits, teacher_logits.detach().argmax(dim=1))


def dafl_activation_loss(teacher_features: Tensor) -> Tensor:
    """``L_a = −(1/n) Σ_i ‖f_i‖₁`` (averaged over features too): images that excite the teacher's filters strongly."""
    return -teacher_features.abs().mean()


def dafl_information_entropy_loss(teacher_logits: Tensor) -> Tensor:
    """``L_ie = −H(p̄)`` with ``p̄ = (1/n) Σ_i softmax(y_i)``: a batch balanced over the classes.

    Entropy in log base 10, as in the authors' code (huawei-noah/Efficient-Computing, DAFL), for which β = 5 was
    chosen; at balance (p̄ uniform over K classes) the loss is its minimum, −log10 K.
    """
    mean_probs = F.softmax(teacher_logits, dim=1).mean(dim=0)
    return (mean_probs * torch.log(mean_probs)).sum() / math.log(10.0)
