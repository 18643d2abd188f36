"""Online distillation among peers: no pre-trained teacher, every network learns from the others."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor


def dml_kl(logits: Tensor, peer_logits: Sequence[Tensor]) -> Tensor:
    """Deep mutual learning's mimicry loss for one cohort member (Zhang, Xiang, Hospedales & Lu, "Deep Mutual
    Learning", CVPR 2018, arXiv:1706.00384).

    ``(1/(K−1)) Σ_{l≠k} KL(p_l ‖ p_k)`` with ``p = softmax(z)`` (T = 1, no T²), summed over classes and averaged over
    the batch. The peers' predictions are constants here (detached), as in the paper, where each network's update
    uses only its own gradient. K > 2 averages the peers' KLs as the paper writes it (the official code sums them).
    """
    if not peer_logits:
        raise ValueError("dml_kl needs at least one peer")
    log_p_self = F.log_softmax(logits, dim=1)
    kls = [
        F.kl_div(log_p_self, F.log_softmax(peer.detach(), dim=1), reduction="batchmean", log_target=True)
        for peer in peer_logits
    ]
    return sum(kls) / len(kls)
