"""Method-specific behaviour of the terms that the config contract test cannot see: DKD's warm-up, CRD's state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kdlab.errors import ConfigError
from kdlab.models import ModelOutputs, StageInfo
from kdlab.terms import CRD, DKD, AttentionTransfer, CorrelationCongruence, PairSpec

STAGES = (StageInfo(0, 4, 2, "stem"), StageInfo(1, 8, 4, "s1"), StageInfo(2, 16, 8, "s2"))


def make_pair(num_train: int = 10, embedding: int | None = 6) -> PairSpec:
    return PairSpec("s", "t", STAGES, STAGES, embedding, embedding, num_classes=3, num_train_samples=num_train)


def outputs(seed: int, batch: int = 4, dim: int = 6) -> ModelOutputs:
    g = torch.Generator().manual_seed(seed)
    return ModelOutputs(logits=torch.randn(batch, 3, generator=g), embedding=torch.randn(batch, dim, generator=g))


def test_dkd_warmup_ramps_to_one():
    term = DKD(make_pair(), temperature=4.0, warmup_epochs=4)
    batch = {"target": torch.tensor([0, 1, 2, 0])}
    full = DKD(make_pair(), warmup_epochs=0)(outputs(0), outputs(1), batch)
    for epoch, factor in [(0, 0.25), (1, 0.5), (3, 1.0), (10, 1.0)]:
        term.current_epoch = epoch
        assert term.warmup_factor() == factor
        losses = term(outputs(0), outputs(1), batch)
        for name in term.loss_names:
            assert torch.allclose(losses[name], factor * full[name])


def crd_step(term: CRD, index: list[int], seed: int) -> torch.Tensor:
    return term(outputs(seed), outputs(seed + 100), {"index": torch.tensor(index)})["crd"]


def test_crd_negatives_exclude_the_positive_and_k_is_clamped():
    with pytest.warns(UserWarning, match="nce_k=9"):
        term = CRD(make_pair(num_train=10), feat_dim=4, nce_k=50)
    assert term.nce_k == 9
    index = torch.tensor([0, 3, 9, 9])
    rows = term.contrast_indices(index)
    assert rows.shape == (4, 10) and (rows[:, 0] == index).all()
    assert not (rows[:, 1:] == index.unsqueeze(1)).any() and rows.min() >= 0 and rows.max() < 10


def test_crd_fixes_z_on_the_first_batch_and_updates_only_its_rows():
    torch.manual_seed(0)
    term = CRD(make_pair(num_train=10), feat_dim=4, nce_k=5)
    before_s, before_t = term.memory_s.clone(), term.memory_t.clone()
    crd_step(term, [1, 4, 7, 8], seed=0).backward()
    z = term.normalisers.clone()
    assert (z > 0).all()
    changed = (term.memory_s != before_s).any(dim=1)
    assert changed.tolist() == [i in (1, 4, 7, 8) for i in range(10)]
    assert torch.allclose(term.memory_t[[1, 4, 7, 8]].norm(dim=1), torch.ones(4))
    assert (term.memory_t != before_t).any(dim=1).sum() == 4
    assert term.embed_s.weight.grad is not None and term.embed_t.weight.grad is not None

    crd_step(term, [0, 2, 3, 5], seed=1)
    assert torch.equal(term.normalisers, z), "Z must stay frozen after the first training batch"


def test_crd_momentum_update_matches_the_formula():
    term = CRD(make_pair(num_train=10), feat_dim=4, nce_k=3, nce_m=0.5)
    old = term.memory_s[2].clone()
    out = outputs(0)
    term(out, outputs(1), {"index": torch.tensor([2, 5, 6, 7])})
    s = F.normalize(term.embed_s(out.embedding), dim=1)[0].detach()
    assert torch.allclose(term.memory_s[2], F.normalize(0.5 * old + 0.5 * s, dim=0))


def test_crd_eval_mode_leaves_state_alone():
    term = CRD(make_pair(num_train=10), feat_dim=4, nce_k=3).eval()
    memory, z = term.memory_s.clone(), term.normalisers.clone()
    loss = crd_step(term, [1, 2, 3, 4], seed=0)
    assert torch.isfinite(loss)
    assert torch.equal(term.memory_s, memory) and torch.equal(term.normalisers, z)


def test_crd_rejects_an_index_outside_the_training_set():
    term = CRD(make_pair(num_train=10), feat_dim=4, nce_k=3)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        crd_step(term, [1, 2, 3, 10], seed=0)


def test_bad_configs_fail_with_config_error():
    with pytest.raises(ConfigError, match="at least one stage"):
        AttentionTransfer(make_pair(), stages=[])
    with pytest.raises(ConfigError, match="stage 5 does not exist"):
        AttentionTransfer(make_pair(), stages=[5])
    with pytest.raises(ConfigError, match=r"exposes none \(no timm classifier"):
        CorrelationCongruence(make_pair(embedding=None))
    with pytest.raises(ConfigError, match="warmup"):
        DKD(make_pair(), warmup_epochs=-1)
