"""Hinton et al. 2015 §3's fix for classes the transfer set left out: raise their output bias by one value b.

A student that never saw a class is reluctant to predict it; adding b to the omitted classes' logits
(z_c ← z_c + b, the same as raising their output-layer bias) shifts the decision. The paper picked b = 3.5 "to
optimize the test performance" (arXiv:1503.02531 §3); here b is chosen on the **validation** split, and the
test-chosen value is reported beside it for comparison with the paper (it is optimistic).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from kdlab import result_keys
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.measure.accuracy import predict_logits

BIAS_GRID = torch.arange(0.0, 20.01, 0.25)  # the paper's 3.5 lies on it; a student may need more, never less than 0


def shifted(logits: Tensor, omitted: list[int], bias: float) -> Tensor:
    """Logits with ``bias`` added to the ``omitted`` classes."""
    out = logits.clone()
    out[:, omitted] += bias
    return out


def errors(logits: Tensor, targets: Tensor) -> int:
    return int((logits.argmax(dim=1) != targets).sum())


def best_bias(logits: Tensor, targets: Tensor, omitted: list[int], grid: Tensor = BIAS_GRID) -> float:
    """The grid value with the fewest errors on ``(logits, targets)``; the smallest such value on a tie."""
    counts = [errors(shifted(logits, omitted, float(b)), targets) for b in grid]
    return float(grid[counts.index(min(counts))])


def omitted_bias_metrics(student: nn.Module, datamodule: InMemoryDataModule, omitted: list[int]) -> dict[str, Any]:
    """Choose b on validation, apply it on test; errors overall and on the omitted classes, before and after."""
    val_logits, val_targets = predict_logits(student, datamodule.model_batches("val"))
    test_logits, test_targets = predict_logits(student, datamodule.model_batches("test"))
    chosen = best_bias(val_logits, val_targets, omitted)
    test_chosen = best_bias(test_logits, test_targets, omitted)
    on_omitted = torch.isin(test_targets, torch.as_tensor(omitted))
    corrected = shifted(test_logits, omitted, chosen)
    total = len(test_targets)
    return {
        result_keys.OMITTED_CLASSES: omitted,
        result_keys.OMITTED_BIAS: chosen,
        result_keys.OMITTED_TEST_ERRORS: errors(test_logits, test_targets),
        result_keys.OMITTED_TEST_ERRORS_ON_OMITTED: errors(test_logits[on_omitted], test_targets[on_omitted]),
        result_keys.OMITTED_TEST_ERRORS_CORRECTED: errors(corrected, test_targets),
        result_keys.OMITTED_TEST_ERRORS_ON_OMITTED_CORRECTED: errors(corrected[on_omitted], test_targets[on_omitted]),
        result_keys.OMITTED_TEST_ACC_CORRECTED: 1 - errors(corrected, test_targets) / total,
        result_keys.OMITTED_BIAS_TEST_CHOSEN: test_chosen,
        result_keys.OMITTED_TEST_ACC_TEST_CHOSEN: 1
        - errors(shifted(test_logits, omitted, test_chosen), test_targets) / total,
    }
