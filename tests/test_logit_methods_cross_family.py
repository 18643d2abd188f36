"""Every logit method (a ``conf/kd/*.yaml`` whose terms read only logits) distils across model families: a small
CNN teacher into a tiny ViT student and back (timm's ``test_resnet`` ↔ ``test_vit`` at 32×32). Parametrised over the
config files, so a new logit method is covered the moment its YAML exists."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from test_terms_contract import CONF, KD_CONFIGS, needs_dist_token, tiny_distilled_vit

from kdlab.models import embedding_dim, forward_with_taps, has_distillation_token, stage_infos
from kdlab.terms import DistillationTerm, PairSpec

FAMILIES = {"cnn": ("test_resnet", {}), "vit": ("test_vit", {"img_size": 32})}


def make(family: str, seed: int) -> tuple[str, torch.nn.Module]:
    name, kwargs = FAMILIES[family]
    torch.manual_seed(seed)
    return name, timm.create_model(name, num_classes=10, in_chans=1, **kwargs)


def pair_spec(student_name: str, student, teacher_name: str, teacher) -> PairSpec:
    return PairSpec(
        student_name=student_name,
        teacher_name=teacher_name,
        student_stages=tuple(stage_infos(student)),
        teacher_stages=tuple(stage_infos(teacher)),
        student_embedding_dim=embedding_dim(student),
        teacher_embedding_dim=embedding_dim(teacher),
        num_classes=10,
        num_train_samples=64,
        student_has_dist_token=has_distillation_token(student),
    )


def logit_terms(name: str, pair: PairSpec) -> dict[str, DistillationTerm] | None:
    """The config's terms when every one of them reads only logits, else None."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        kd = compose("config", overrides=[f"kd={name}", "logger=none"]).kd
    terms = {key: instantiate(node)(pair=pair) for key, node in kd.terms.items()}
    logit_only = all(not t.student_stages and not t.teacher_stages and not t.needs_embedding for t in terms.values())
    return (terms, kd) if terms and logit_only else None


@pytest.mark.parametrize(("teacher_family", "student_family"), [("cnn", "vit"), ("vit", "cnn")])
@pytest.mark.parametrize("name", KD_CONFIGS)
def test_logit_method_distils_across_families(name: str, teacher_family: str, student_family: str):
    teacher_name, teacher = make(teacher_family, 0)
    student_name, student = make(student_family, 1)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        dist_token = needs_dist_token(compose("config", overrides=[f"kd={name}", "logger=none"]).kd)
    if dist_token and student_family == "cnn":
        pytest.skip(f"kd={name} needs a student with a distillation token (a DeiT ViT)")
    if dist_token:
        student_name, student = "deit_tiny_distilled_patch16_224", tiny_distilled_vit()
    teacher.eval().requires_grad_(False)
    found = logit_terms(name, pair_spec(student_name, student, teacher_name, teacher))
    if found is None:
        pytest.skip(f"kd={name} is not a logit-only method")
    terms, kd = found
    x, target = torch.randn(4, 1, 32, 32), torch.tensor([0, 3, 7, 3])
    batch = {"image": x, "target": target, "index": torch.arange(4)}
    if any(term.needs_class_pairs for term in terms.values()):  # CS-KD: rows 2, 3 are class-mates of rows 0, 1
        batch["partner"] = torch.tensor([False, False, True, True])
    with torch.no_grad():
        teacher_out = forward_with_taps(teacher, x, [], False)
    student_out = forward_with_taps(student, x, [], False, dist_token)
    total = (1 - kd.alpha) * F.cross_entropy(student_out.logits, target)
    for term in terms.values():
        for loss_name, loss in term(student_out, teacher_out, batch).items():
            assert loss.dim() == 0 and torch.isfinite(loss), f"kd={name}: {loss_name} = {loss}"
            total = total + kd.weights[loss_name] * loss
    total.backward()
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in teacher.parameters())
