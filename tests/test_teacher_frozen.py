"""The teacher stays frozen: no gradients, eval mode whatever calls .train(), BatchNorm buffers untouched by a fit."""

from __future__ import annotations

import pytorch_lightning as pl
import timm
import torch
from conftest import compose_config
from hydra.utils import instantiate

from kdlab.models import FrozenTeacher, embedding_dim, stage_infos
from kdlab.terms import RKD, FitNetHints, PairSpec, SoftTargets
from kdlab.training.module import DistillationModule


def test_train_call_keeps_teacher_in_eval_mode() -> None:
    teacher = FrozenTeacher(timm.create_model("test_resnet", num_classes=10, in_chans=1))
    parent = torch.nn.ModuleDict({"teacher": teacher})
    parent.train()
    assert not teacher.training and not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())


def test_fit_leaves_teacher_untouched_and_trains_connectors(tmp_path) -> None:
    cfg = compose_config("data.batch_size=32")
    datamodule = instantiate(cfg.data)
    student = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    teacher = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    with torch.no_grad():  # non-trivial running stats, so a drift would show
        for module in teacher.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    pair = PairSpec(
        "test_resnet", "test_resnet", tuple(stage_infos(student)), tuple(stage_infos(teacher)),
        embedding_dim(student), embedding_dim(teacher), 10, datamodule.num_train,
    )  # fmt: skip
    terms = {"soft": SoftTargets(pair, 4.0), "hints": FitNetHints(pair, [1, -1]), "rkd": RKD(pair)}
    connectors_before = [p.clone() for p in terms["hints"].parameters()]
    module = DistillationModule(
        student,
        10,
        optimizer=instantiate(cfg.optim.optimizer),
        teacher=teacher,
        terms=terms,
        weights={"kd": 0.5, "hint": 1.0, "rkd_distance": 1.0, "rkd_angle": 1.0},
        alpha=0.5,
    )
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=3, limit_val_batches=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "teacher weights or BN buffers changed"
    assert all(p.grad is None for p in teacher.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(connectors_before, terms["hints"].parameters(), strict=True))
