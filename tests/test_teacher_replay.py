"""Teacher-output replay: the replayed logits are the teacher's on the student's exact augmented (and mixed) batch,
computed once per view and reused, top-K reconstruction, budget refusal, and where replay does not apply."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import FAST, compose_config
from streaming_trees import write_jpeg_tree
from test_imagefolder import _write_tree

from kdlab.data.augment import apply_augment, sample_keys
from kdlab.errors import ConfigError
from kdlab.run import run
from kdlab.teacher.output_cache import OutputsSettings
from kdlab.teacher.replay import why_not_replay
from kdlab.training.module import DistillationModule
from kdlab.training.replay_table import reconstruct_logits, topk_with_rest
from kdlab.training.teacher_outputs import TeacherTaps, run_teacher

REPLAY = [*FAST, "data.augment=crop_flip", "trainer.max_epochs=3", "kd.replay.views=2"]


def _record_replayed_vs_fresh(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """Each training step's (epoch, replayed logits, a fresh teacher forward on that step's exact batch)."""
    seen: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    original = DistillationModule._teacher_outputs

    def checking(self, batch, split, stages, embedding):
        out = original(self, batch, split, stages, embedding)
        if split == "train":
            with torch.autocast(batch["image"].device.type, enabled=False):
                fresh = run_teacher(self.teacher.model, batch["image"].float()).logits
            seen.append((self.current_epoch, out.logits.detach().float(), fresh.float()))
        return out

    monkeypatch.setattr(DistillationModule, "_teacher_outputs", checking)
    return seen


def _assert_replayed_equals_fresh(seen: list[tuple[int, torch.Tensor, torch.Tensor]], epochs: int) -> None:
    assert sorted({epoch for epoch, _, _ in seen}) == list(range(epochs))
    for _, replayed, fresh in seen:
        torch.testing.assert_close(replayed, fresh.half().float(), rtol=2e-3, atol=2e-3)  # stored as fp16


def test_replayed_logits_are_the_teachers_on_the_exact_augmented_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _record_replayed_vs_fresh(monkeypatch)
    metrics = run(compose_config(*REPLAY), tmp_path / "a")
    assert metrics["teacher/outputs_source"] == "replay"
    _assert_replayed_equals_fresh(seen, 3)  # epoch 2 replays view 0 (V=2 < epochs: views cycle)


def test_replayed_logits_match_with_mixup_and_cutmix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _write_tree(tmp_path / "images")
    folder = ["data=imagefolder", f"data.root={root}", "data.image_size=16", "data.in_memory=true"]
    mixing = ["data.mixup=0.8", "data.cutmix=1.0", "data.batch_size=8"]
    seen = _record_replayed_vs_fresh(monkeypatch)
    metrics = run(compose_config(*REPLAY, *folder, *mixing), tmp_path / "r")
    assert metrics["teacher/outputs_source"] == "replay"
    _assert_replayed_equals_fresh(seen, 3)


@pytest.mark.parametrize("mixing", [[], ["data.mixup=0.8", "data.cutmix=1.0"]], ids=["crops+erasing", "+mixing"])
def test_replay_on_a_streamed_folder_is_the_teachers_exact_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mixing: list[str]
) -> None:
    """Streamed from disk by two workers: timm's RandomResizedCrop + flip + RandAugment in the workers, erasing (and
    mixing) on the device; the replayed logits are still the teacher's on the student's exact batch, views cycling."""
    root = write_jpeg_tree(tmp_path / "jpegs", {"train": 12, "test": 4})
    folder = ["data=imagefolder", f"data.root={root}", "data.image_size=24", "data.in_memory=false"]
    recipe = ["data.augment=rand-m9-mstd0.5", "data.random_erasing=0.5", "data.num_workers=2", "data.batch_size=8"]
    seen = _record_replayed_vs_fresh(monkeypatch)
    metrics = run(compose_config(*REPLAY, *folder, *recipe, *mixing), tmp_path / "r")
    assert metrics["teacher/outputs_source"] == "replay"
    _assert_replayed_equals_fresh(seen, 3)


def test_an_embedding_term_replays_the_teachers_pooled_embedding_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RKD reads the teacher's pooled embedding: it is stored per view beside the logits and looked up with them."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = DistillationModule._teacher_outputs

    def checking(self, batch, split, stages, embedding):
        out = original(self, batch, split, stages, embedding)
        if split == "train" and embedding:
            fresh = run_teacher(self.teacher.model, batch["image"].float(), embedding=True).embedding
            seen.append((out.embedding.detach().float(), fresh.float()))
        return out

    monkeypatch.setattr(DistillationModule, "_teacher_outputs", checking)
    metrics = run(compose_config(*REPLAY, "kd=relation"), tmp_path / "r")
    assert metrics["teacher/outputs_source"] == "replay" and seen
    for replayed, fresh in seen:
        torch.testing.assert_close(replayed, fresh.half().float(), rtol=2e-3, atol=2e-3)  # stored as fp16


def test_an_ensemble_replays_its_combined_logits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two members' soft targets are combined once per view and stored as one teacher's logits."""
    ensemble = ["teacher=ensemble", "teacher.members=[tiny,{config:tiny,seed:1}]"]
    seen = _record_replayed_vs_fresh(monkeypatch)
    metrics = run(compose_config(*[o for o in REPLAY if o != "teacher=tiny"], *ensemble), tmp_path / "e")
    assert metrics["teacher/outputs_source"] == "replay" and metrics["teacher/name"] == "ensemble"
    _assert_replayed_equals_fresh(seen, 3)


def test_views_are_computed_once_and_reused_by_every_job(tmp_path: Path) -> None:
    first = run(compose_config(*REPLAY), tmp_path / "a")
    second = run(compose_config(*REPLAY, "kd.alpha=0.5", "kd.temperature=8"), tmp_path / "b")
    assert first["teacher/outputs_source"] == second["teacher/outputs_source"] == "replay"
    stored = [p for p in (tmp_path / "kdlab-cache" / "teacher_replay").iterdir() if p.is_dir()]
    assert len(stored) == 1
    views, samples, classes = json.loads((stored[0] / "meta.json").read_text())["shape"]
    assert (views, classes) == (2, 10) and (stored[0] / "logits.f16").stat().st_size == views * samples * classes * 2


def test_a_killed_jobs_partial_views_are_removed_by_the_next_writer(tmp_path: Path) -> None:
    run(compose_config(*REPLAY), tmp_path / "a")
    root = tmp_path / "kdlab-cache" / "teacher_replay"
    (entry,) = [p for p in root.iterdir() if p.is_dir()]
    entry.rename(entry.with_name(f"{entry.name}.partial-424242"))  # what a job killed mid-write leaves: no entry
    assert run(compose_config(*REPLAY), tmp_path / "b")["teacher/outputs_source"] == "replay"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [entry.name]


def test_augmentation_is_a_function_of_seed_epoch_and_sample() -> None:
    images = torch.randn(6, 1, 8, 8)
    index = torch.arange(6)
    once = apply_augment("crop_flip", images, sample_keys(0, 1, index))
    # the same samples in another order and batch give the same views
    reordered = apply_augment("crop_flip", images.flip(0), sample_keys(0, 1, index.flip(0))).flip(0)
    assert torch.equal(once, reordered)
    assert not torch.equal(once, apply_augment("crop_flip", images, sample_keys(0, 2, index)))  # another epoch
    assert not torch.equal(once, apply_augment("crop_flip", images, sample_keys(1, 1, index)))  # another seed


def test_topk_reconstruction_keeps_topk_probabilities_and_the_rest_mass() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 100) * 3
    values, indices, rest = topk_with_rest(logits, 10)
    rebuilt = reconstruct_logits(values, indices, rest, 100)
    p, q = logits.softmax(-1), rebuilt.softmax(-1)
    torch.testing.assert_close(q.gather(-1, indices), p.gather(-1, indices))
    torch.testing.assert_close(1 - q.gather(-1, indices).sum(-1), 1 - p.gather(-1, indices).sum(-1))
    others = torch.ones_like(p, dtype=torch.bool).scatter(-1, indices, False)
    assert torch.allclose(rebuilt[others].view(5, 90), (rest - math.log(90))[:, None].expand(5, 90))


def test_a_topk_run_replays(tmp_path: Path) -> None:
    metrics = run(compose_config(*REPLAY, "kd.replay.topk=3"), tmp_path / "a")
    assert metrics["teacher/outputs_source"] == "replay"


def test_replay_over_the_disk_budget_is_refused_before_training(tmp_path: Path) -> None:
    forced = [*REPLAY, "kd.cache_teacher=replay", "kd.replay.max_gb=0.000001"]
    with pytest.raises(ConfigError, match=r"replayed teacher logits need .* GiB for 2 views, over kd\.replay\.max_gb"):
        run(compose_config(*forced), tmp_path / "a")
    assert not (tmp_path / "a" / "results.json").exists()


def test_auto_over_budget_runs_the_teacher_online(tmp_path: Path) -> None:
    metrics = run(compose_config(*REPLAY, "kd.replay.max_gb=0.000001"), tmp_path / "a")
    assert metrics["teacher/outputs_source"] == "online"


def test_feature_terms_run_the_teacher_online_and_say_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kdlab.teacher.replay"):
        metrics = run(compose_config(*REPLAY, "kd=fitnet"), tmp_path / "a")
    assert metrics["teacher/outputs_source"] == "online"
    assert "feature maps, which are not replayed" in caplog.text
    forced = compose_config(*REPLAY, "kd=fitnet", "kd.cache_teacher=replay")
    with pytest.raises(ConfigError, match=r"kd\.cache_teacher=replay: term hints \(kdlab\.terms\.FitNetHints\) reads"):
        run(forced, tmp_path / "b")
    assert not list((tmp_path / "b").rglob("*.ckpt")) and not list((tmp_path / "b").rglob("*.pt"))  # before training


@pytest.mark.parametrize("views", [0, "two"])
def test_bad_views_is_a_config_error(tmp_path: Path, views: object) -> None:
    with pytest.raises(ConfigError, match=rf"kd\.replay\.views must be a positive integer .* got {views!r}"):
        run(compose_config(*REPLAY, f"kd.replay.views={views}"), tmp_path / "a")


def test_under_ddp_only_unmixed_views_are_replayed() -> None:
    """A stored row is one sample's view, whichever rank trains on it; a mixed row depends on its rank's batch."""
    ddp = OutputsSettings("t", "auto", "crop_flip", 2, 0, 1.0, devices=2, strategy="ddp", cache_dir=None)
    logits_only = TeacherTaps((), False)
    assert why_not_replay(ddp, SimpleNamespace(mixer=None), logits_only) is None
    assert "under DDP" in why_not_replay(ddp, SimpleNamespace(mixer=object()), logits_only)
    one = replace(ddp, devices=1, strategy="auto")
    assert why_not_replay(one, SimpleNamespace(mixer=object()), logits_only) is None
