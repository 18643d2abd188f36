"""CS-KD (class-paired batches, teacher=none) and ReviewKD (ABF fusion + HCL): the data pairing, the terms'
behaviour, and each run end to end on the embedded data (``trainer=fast``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config

import kdlab.losses as L
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.mixing import BatchMixer
from kdlab.data.pairs import ClassPairedDataset
from kdlab.data.tensors import Split
from kdlab.errors import ConfigError
from kdlab.models.outputs import ModelOutputs
from kdlab.models.taps import StageInfo
from kdlab.run import run
from kdlab.terms import ClassWiseSelfKD, PairSpec, ReviewKD
from kdlab.training.module import supervised_rows


def split(n: int = 40, classes: int = 4) -> Split:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    return Split(images, torch.randint(0, classes, (n,), generator=g))


# ------------------------------------------------------------------------------------------------ CS-KD data


def test_partners_are_class_mates_fixed_by_seed_epoch_and_index():
    data = split()
    paired = ClassPairedDataset(data, seed=3)
    batch = paired.__getitems__([(2, i) for i in range(len(data))])
    anchors, partners = batch["index"][: len(data)], batch["index"][len(data) :]
    assert torch.equal(anchors, torch.arange(len(data)))
    assert torch.equal(data.targets[partners], data.targets[anchors])
    assert batch["partner"].tolist() == [False] * len(data) + [True] * len(data)
    assert torch.equal(paired.partners(anchors, 2), ClassPairedDataset(data, seed=3).partners(anchors, 2))
    assert not torch.equal(paired.partners(anchors, 2), paired.partners(anchors, 3))  # a fresh draw per epoch
    assert not torch.equal(paired.partners(anchors, 2), ClassPairedDataset(data, seed=4).partners(anchors, 2))


def test_partner_draw_covers_the_whole_class():
    """Uniform over the class (the anchor itself included), as the authors' PairBatchSampler draws."""
    data = split()
    paired, anchor = ClassPairedDataset(data, seed=0), torch.tensor([0])
    seen = {int(paired.partners(anchor, epoch)) for epoch in range(200)}
    assert seen == set(torch.nonzero(data.targets == data.targets[0]).flatten().tolist())


def datamodule(**kwargs) -> InMemoryDataModule:
    data = split()
    return InMemoryDataModule("toy", data, data, data, num_classes=4, batch_size=6, **kwargs)


def test_paired_loader_resumes_mid_epoch_with_the_same_batches(monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    dm = datamodule()
    dm.pair_same_class()
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    batches, state = [], None
    for k, batch in enumerate(loader):
        batches.append(batch["index"])
        if k == 2:
            state = loader.state_dict()
    assert all(len(b) == 12 for b in batches[:-1])  # 6 anchors + 6 partners per step
    resumed = datamodule()
    resumed.pair_same_class()
    again = resumed.train_dataloader()
    again.load_state_dict(state)
    again.sampler.set_epoch(1)
    rest = [b["index"] for b in again]
    assert len(rest) == len(batches) - 3 and all(torch.equal(a, b) for a, b in zip(rest, batches[3:], strict=True))


def test_class_pairs_with_mixing_are_a_config_error():
    dm = datamodule(mixer=BatchMixer(0.2, 0.0, 4))
    with pytest.raises(ConfigError, match=r"class-paired batches .* cannot be mixed"):
        dm.pair_same_class()


def test_cross_entropy_and_accuracy_read_only_the_anchor_rows():
    batch = {"target": torch.tensor([1, 2, 1, 2]), "partner": torch.tensor([False, False, True, True])}
    assert supervised_rows(batch).tolist() == [True, True, False, False]
    assert supervised_rows({"target": batch["target"]}) == slice(None)


# ------------------------------------------------------------------------------------------------ CS-KD term


def test_cskd_term_pulls_anchors_towards_detached_class_mates():
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    batch = {"target": torch.tensor([0, 1, 2, 0, 1, 2]), "partner": torch.tensor([False] * 3 + [True] * 3)}
    loss = ClassWiseSelfKD(None, temperature=4.0)(ModelOutputs(logits=logits), None, batch)["cskd"]
    assert float(loss.detach()) == pytest.approx(float(L.kd_kl(logits[:3], logits[3:], 4.0)), rel=1e-12)
    loss.backward()
    assert logits.grad[:3].abs().sum() > 0 and logits.grad[3:].abs().sum() == 0  # no gradient to the partner half


def test_cskd_without_paired_batches_is_a_config_error():
    with pytest.raises(ConfigError, match="class-paired batches"):
        ClassWiseSelfKD(None)(ModelOutputs(logits=torch.zeros(2, 3)), None, {"target": torch.tensor([0, 1])})


def finished(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "completed"
    return results


def test_cskd_runs_with_no_teacher(tmp_path: Path):
    run(compose_config(*FAST, "kd=cskd", "teacher=none"), tmp_path)
    results = finished(tmp_path)
    assert results["teacher/source"] == "none" and 0.0 <= results["student/test_acc"] <= 1.0


# ------------------------------------------------------------------------------------------------ ReviewKD


def stage(index: int, channels: int, reduction: int) -> StageInfo:
    return StageInfo(index, channels, reduction, f"s{index}")


PAIR = PairSpec(
    student_name="s",
    teacher_name="t",
    student_stages=(stage(0, 4, 2), stage(1, 6, 4), stage(2, 10, 8)),
    teacher_stages=(stage(0, 8, 2), stage(1, 12, 4), stage(2, 16, 8)),
    student_embedding_dim=20,
    teacher_embedding_dim=24,
    num_classes=5,
    num_train_samples=10,
)


def review_outputs(seed: int, channels: list[int], sizes: list[int], width: int) -> ModelOutputs:
    g = torch.Generator().manual_seed(seed)
    maps = zip(channels, sizes, strict=True)
    features = {i + 1: torch.randn(3, c, s, s, generator=g) for i, (c, s) in enumerate(maps)}
    return ModelOutputs(logits=torch.zeros(3, 5), features=features, embedding=torch.randn(3, width, generator=g))


def test_reviewkd_fuses_deep_to_shallow_and_matches_the_teacher_maps():
    term = ReviewKD(PAIR, stages=[1, 2], warmup_epochs=0)
    assert [f.attention is None for f in term.fusions] == [False, False, True]  # the deepest level fuses nothing
    assert term.fusions[0].reduce[0].out_channels == 20  # mid width min(512, C_last of the student)
    student = review_outputs(0, [6, 10], [8, 4], 20)
    teacher = review_outputs(1, [12, 16], [4, 2], 24)  # the teacher's maps are half the student's size
    loss = term(student, teacher, {})["review"]
    loss.backward()
    for name, param in term.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_reviewkd_warmup_starts_at_zero_and_is_linear_in_the_epoch():
    term = ReviewKD(PAIR, stages=[1, 2], warmup_epochs=20)
    student, teacher = review_outputs(0, [6, 10], [4, 2], 20), review_outputs(1, [12, 16], [4, 2], 24)
    values = {}
    for epoch in (0, 10, 20, 30):
        term.current_epoch = epoch
        values[epoch] = float(term(student, teacher, {})["review"])
    assert values[0] == 0.0 and values[20] > 0
    assert values[10] == pytest.approx(values[20] / 2, rel=1e-6) and values[30] == pytest.approx(values[20])


def test_reviewkd_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="warmup_epochs ≥ 0"):
        ReviewKD(PAIR, warmup_epochs=-1)
    with pytest.raises(ConfigError, match="stage 5 does not exist"):
        ReviewKD(PAIR, stages=[5])


def test_reviewkd_runs_end_to_end_past_its_warmup(tmp_path: Path):
    run(compose_config(*FAST, "kd=reviewkd", "kd.terms.review.warmup_epochs=0", "student=tiny_mobilenet"), tmp_path)
    results = finished(tmp_path)
    assert results["config"]["kd"]["weights"]["review"] == 5.0
