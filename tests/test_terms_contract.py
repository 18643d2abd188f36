"""Every ``conf/kd/*.yaml`` builds terms that honour the DistillationTerm contract on a heterogeneous timm pair.

Parametrised over the files themselves, so a new method config is tested the moment it exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from kdlab.errors import ConfigError
from kdlab.models import embedding_dim, forward_with_taps, has_distillation_token, stage_infos
from kdlab.teacher.replay import check_forced_replay
from kdlab.terms import DistillationTerm, PairSpec

CONF = Path(__file__).resolve().parents[1] / "conf"
KD_CONFIGS = sorted(path.stem for path in (CONF / "kd").glob("*.yaml"))
NUM_TRAIN = 64


@pytest.fixture(scope="module")
def models() -> tuple[torch.nn.Module, torch.nn.Module, PairSpec]:
    torch.manual_seed(0)
    teacher = timm.create_model("test_resnet", num_classes=10, in_chans=1).eval().requires_grad_(False)
    student = timm.create_model("mobilenetv3_small_050", num_classes=10, in_chans=1)
    pair = PairSpec(
        student_name="mobilenetv3_small_050",
        teacher_name="test_resnet",
        student_stages=tuple(stage_infos(student)),
        teacher_stages=tuple(stage_infos(teacher)),
        student_embedding_dim=embedding_dim(student),
        teacher_embedding_dim=embedding_dim(teacher),
        num_classes=10,
        num_train_samples=NUM_TRAIN,
    )
    return teacher, student, pair


def tiny_distilled_vit() -> torch.nn.Module:
    """A DeiT student with a distillation token, the only kind kd=deit accepts (as conf/student/deit_tiny_distilled)."""
    torch.manual_seed(0)
    return timm.create_model(
        "deit_tiny_distilled_patch16_224",
        img_size=32,
        patch_size=4,
        embed_dim=32,
        depth=1,
        num_heads=2,
        num_classes=10,
        in_chans=1,
    )


def needs_dist_token(kd) -> bool:
    """Whether a term of the config reads the student's distillation-token head (kd=deit)."""
    return any(instantiate(node).func.needs_dist_token for node in (kd.terms or {}).values())


def with_distilled_student(pair: PairSpec) -> tuple[torch.nn.Module, PairSpec]:
    student = tiny_distilled_vit()
    return student, dataclasses.replace(
        pair,
        student_name="deit_tiny_distilled_patch16_224",
        student_stages=tuple(stage_infos(student)),
        student_embedding_dim=embedding_dim(student),
        student_has_dist_token=has_distillation_token(student),
    )


def compose_kd(name: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"kd={name}", "logger=none"])


def build_terms(kd, pair: PairSpec) -> dict[str, DistillationTerm]:
    # CRD's nce_k = 16384 exceeds this tiny training set and must say it clamps K.
    clamps = any(node.get("_target_") == "kdlab.terms.CRD" for node in kd.terms.values())
    with pytest.warns(UserWarning, match="nce_k") if clamps else contextlib.nullcontext():
        return {key: instantiate(node)(pair=pair) for key, node in kd.terms.items()}


def test_configs_found():
    assert {"none", "response", "dkd", "dist", "at", "at_kd", "crd"} <= set(KD_CONFIGS)


@pytest.mark.parametrize("name", KD_CONFIGS)
def test_kd_config_contract(name: str, models):
    teacher, student, pair = models
    kd = compose_kd(name).kd
    assert {"temperature", "alpha", "terms", "weights"} <= set(kd), f"kd={name} misses a required key"
    dist_token = needs_dist_token(kd)
    if dist_token:  # DeiT: the student needs the distillation token and its head
        student, pair = with_distilled_student(pair)
    assert 0.0 <= kd.alpha <= 1.0
    terms = build_terms(kd, pair)
    names = [loss for term in terms.values() for loss in term.loss_names]
    assert len(names) == len(set(names)), f"kd={name}: two terms return the same loss name {names}"
    assert set(names) == set(kd.weights), f"kd={name}: loss names {names} vs weights {list(kd.weights)}"
    forced_replay = OmegaConf.merge(kd, {"cache_teacher": "replay"})
    if any(term.teacher_stages for term in terms.values()):  # the early check agrees with the built terms' taps
        with pytest.raises(ConfigError, match="reads the teacher's feature maps, which are not replayed"):
            check_forced_replay(forced_replay)
    else:
        check_forced_replay(forced_replay)
    for term in terms.values():
        assert isinstance(term, DistillationTerm)
        assert term.current_epoch == 0
        term.current_epoch = 100  # past any warm-up (DKD, ReviewKD), so every loss and parameter is live
    if not terms:
        return

    student.train()
    student.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    x = torch.randn(4, 1, 32, 32)
    batch = {"image": x, "target": torch.tensor([0, 3, 7, 3]), "index": torch.tensor([5, 0, 63, 17])}
    if any(term.needs_class_pairs for term in terms.values()):  # CS-KD: rows 2, 3 are the partners of rows 0, 1
        batch = {**batch, "target": torch.tensor([0, 3, 0, 3]), "partner": torch.tensor([False, False, True, True])}
    need_embedding = any(term.needs_embedding for term in terms.values())
    student_stages = sorted({s for term in terms.values() for s in term.student_stages})
    teacher_stages = sorted({t for term in terms.values() for t in term.teacher_stages})
    with torch.no_grad():
        teacher_out = forward_with_taps(teacher, x, teacher_stages, need_embedding)
    student_out = forward_with_taps(student, x, student_stages, need_embedding, dist_token)

    total = (1 - kd.alpha) * F.cross_entropy(student_out.logits, batch["target"])
    for term in terms.values():
        losses = term(student_out, teacher_out, batch)
        assert set(losses) == set(term.loss_names)
        for loss_name, loss in losses.items():
            assert loss.dim() == 0 and bool(torch.isfinite(loss)), f"kd={name}: {loss_name} = {loss}"
            total = total + kd.weights[loss_name] * loss
    total.backward()

    stem = next(student.parameters())  # every tap and the logits depend on the stem
    assert stem.grad is not None and stem.grad.abs().sum() > 0, f"kd={name}: no gradient reaches the student"
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in student.parameters())
    for key, term in terms.items():
        for param_name, param in term.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), f"kd={name}: {key}.{param_name}"
            assert param.grad.abs().sum() > 0, f"kd={name}: zero gradient on {key}.{param_name}"
    assert all(p.grad is None for p in teacher.parameters()), f"kd={name}: a gradient reached the teacher"
