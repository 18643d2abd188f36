"""Properties of the core loss functions: what their papers imply whatever the numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kdlab.losses import hint_mse, kd_kl, rkd_angle, rkd_distance


@pytest.fixture
def logits() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 10, generator=gen), torch.randn(8, 10, generator=gen)


def test_kd_kl_is_zero_when_student_equals_teacher(logits) -> None:
    s, _ = logits
    assert kd_kl(s, s.clone(), 4.0).abs() < 1e-6


def test_kd_kl_is_t_squared_times_batchmean_kl(logits) -> None:
    """Against a float64 reference: at T=20 the KL before T² is ~2e-3, a difference of log-probabilities that float32
    resolves to ~1e-5 relative (a float32 by-hand sum is itself 1.4e-5 off), so rtol=2e-5 is what float32 allows."""
    s, t = logits
    for temperature in (1.0, 4.0, 20.0):
        p_t, p_s = F.softmax(t.double() / temperature, 1), F.softmax(s.double() / temperature, 1)
        by_hand = (p_t * (p_t.log() - p_s.log())).sum(1).mean() * temperature**2
        torch.testing.assert_close(kd_kl(s, t, temperature).double(), by_hand, rtol=2e-5, atol=0.0)


def test_kd_kl_rejects_non_positive_temperature(logits) -> None:
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        kd_kl(*logits, 0.0)


def test_rkd_losses_vanish_for_a_scaled_copy() -> None:
    emb = torch.randn(6, 16, generator=torch.Generator().manual_seed(1))
    assert rkd_distance(emb * 3.0, emb) < 1e-6  # distances are mean-normalised
    assert rkd_angle(emb * 3.0, emb) < 1e-6  # angles are scale-free


def _angle_by_loop(x: torch.Tensor) -> torch.Tensor:
    """The paper's angle potential, one triplet at a time: cos of the angle at x_j between x_i and x_k."""
    n, out = len(x), []
    for i in range(n):
        for j in range(n):
            for k in range(n):
                a, b = F.normalize(x[i] - x[j], dim=0), F.normalize(x[k] - x[j], dim=0)
                out.append((a * b).sum())
    return torch.stack(out)


def test_rkd_angle_matches_a_loop_over_triplets() -> None:
    teacher = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    student = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.5, 3.0]])
    expected = F.smooth_l1_loss(_angle_by_loop(student), _angle_by_loop(teacher))
    assert torch.allclose(rkd_angle(student, teacher), expected, atol=1e-6)
    # the right angle at the origin for the teacher is a straight line for the student: cos 0 vs cos 180°
    assert _angle_by_loop(teacher)[1 * 16 + 0 * 4 + 2] == pytest.approx(0.0, abs=1e-6)
    assert _angle_by_loop(student)[1 * 16 + 0 * 4 + 2] == pytest.approx(-1.0)


def test_rkd_distance_hand_case() -> None:
    # Teacher: points 0, 1, 2 on a line -> distances 1, 1, 2 (mean 4/3); student: 0, 1, 3 -> 1, 2, 3 (mean 2).
    teacher = torch.tensor([[0.0], [1.0], [2.0]])
    student = torch.tensor([[0.0], [1.0], [3.0]])
    t = torch.tensor([[0, 1, 2], [1, 0, 1], [2, 1, 0]]) / (4 / 3)
    s = torch.tensor([[0, 1, 3], [1, 0, 2], [3, 2, 0]]) / 2.0
    assert torch.allclose(rkd_distance(student, teacher), F.smooth_l1_loss(s, t), atol=1e-6)


def test_rkd_never_sends_gradient_to_the_teacher(logits) -> None:
    s, t = (x.clone().requires_grad_(True) for x in logits)
    (rkd_distance(s, t) + rkd_angle(s, t)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_kd_kl_and_hint_send_gradient_to_the_student(logits) -> None:
    s = logits[0].clone().requires_grad_(True)
    fs = torch.randn(4, 3, 5, 5, requires_grad=True)
    (kd_kl(s, logits[1], 4.0) + hint_mse(fs, torch.randn(4, 3, 5, 5))).backward()
    assert s.grad.abs().sum() > 0 and fs.grad.abs().sum() > 0


def test_hint_mse_requires_matching_shapes() -> None:
    with pytest.raises(ValueError, match="connector"):
        hint_mse(torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 4, 4))
