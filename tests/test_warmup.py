"""``optim.warmup_epochs``: a linear ramp multiplied onto the configured scheduler, so a cosine still decays over
the whole run and the run's learning rate is reached after the warm-up."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from conftest import FAST, compose_config
from omegaconf import OmegaConf

from kdlab.errors import ConfigError
from kdlab.instantiate import build_optim
from kdlab.run import run
from kdlab.run.validate import validate_config

BASE_LR, EPOCHS = 0.1, 10


def optim_node(warmup: int, scheduler: bool = True):
    node = {
        "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": BASE_LR, "momentum": 0.9},
        "warmup_epochs": warmup,
    }
    if scheduler:
        node["scheduler"] = {
            "_target_": "torch.optim.lr_scheduler.CosineAnnealingLR",
            "_partial_": True,
            "T_max": EPOCHS,
        }
    return OmegaConf.create(node)


def epoch_lrs(node) -> list[float]:
    factories = build_optim(node)
    optimizer = factories["optimizer"]([torch.nn.Parameter(torch.zeros(1))])
    scheduler = factories["scheduler"](optimizer)
    lrs = []
    for _ in range(EPOCHS):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def cosine(epoch: int) -> float:
    return BASE_LR * 0.5 * (1 + math.cos(math.pi * epoch / EPOCHS))


def test_warmup_ramps_then_follows_the_cosine_of_the_whole_run() -> None:
    lrs = epoch_lrs(optim_node(warmup=3))
    expected = [cosine(k) * min(k + 1, 4) / 4 for k in range(EPOCHS)]
    assert lrs == pytest.approx(expected, rel=1e-6)
    assert lrs[0] == pytest.approx(BASE_LR / 4)


def test_no_warmup_is_the_scheduler_alone() -> None:
    assert epoch_lrs(optim_node(warmup=0)) == pytest.approx([cosine(k) for k in range(EPOCHS)], rel=1e-6)


def test_warmup_without_a_scheduler_reaches_the_base_lr_and_stays() -> None:
    lrs = epoch_lrs(optim_node(warmup=2, scheduler=False))
    assert lrs == pytest.approx([BASE_LR / 3, 2 * BASE_LR / 3] + [BASE_LR] * (EPOCHS - 2))


def test_a_fractional_warmup_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"optim.warmup_epochs must be an integer ≥ 0, got 1.5"):
        build_optim(optim_node(warmup=1.5))


def test_a_run_trains_through_the_warmup_with_clipped_gradients(tmp_path) -> None:
    """Lightning takes the chained scheduler (it must be an ``LRScheduler``) and Lightning's own clipping."""
    cfg = compose_config(*FAST, "trainer.max_epochs=2", "optim.warmup_epochs=1", "trainer.gradient_clip_val=1.0")
    result = run(cfg, tmp_path)  # a scheduler Lightning refuses would raise here
    assert math.isfinite(result["student/test_acc"])


def test_a_term_warmup_longer_than_the_run_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kdlab.run.validate"):
        validate_config(compose_config("kd=dkd", "trainer.max_epochs=5"))
        assert (
            "kd.terms.dkd.warmup_epochs=20 ≥ trainer.max_epochs=5: its loss never reaches full weight (at most 25%)"
            in (caplog.text)
        )
        caplog.clear()
        validate_config(compose_config("kd=dkd", "trainer.max_epochs=5", "kd.terms.dkd.warmup_epochs=2"))
        assert "warmup_epochs" not in caplog.text
