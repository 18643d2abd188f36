"""Born-again networks: a chain of same-architecture generations, each taught by the previous one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FAST, WHOLE_TEACHER, compose_config
from reference import accuracy, file_test_logits

from kdlab.errors import ConfigError
from kdlab.instantiate import build
from kdlab.run import run

AUGMENTED = "data.augment=crop_flip"  # random views: each generation replays its teacher's outputs


def test_generations_chain_and_report_each_generation_and_the_ensemble(tmp_path: Path) -> None:
    metrics = run(
        compose_config(*FAST, "kd=born_again", "kd.generations=2", "trainer.limit_test_batches=1.0", AUGMENTED),
        tmp_path,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed" and results["generations"] == 2
    for k in range(3):
        assert 0.0 <= results[f"generations/{k}/test_acc"] <= 1.0
        assert Path(results[f"generations/{k}/checkpoint"]).is_file()
    for k in (1, 2):  # each generation is an ordinary run, taught by the file the previous generation wrote
        gen = json.loads((tmp_path / f"gen{k}" / "results.json").read_text())
        assert (
            gen["teacher/path"] == results[f"generations/{k - 1}/checkpoint"] and gen["teacher/source"] == "checkpoint"
        )
        assert gen["student/test_acc"] == results[f"generations/{k}/test_acc"]
        assert gen["teacher/outputs_source"] == "replay"  # each generation's own teacher, its own replayed views
        assert gen["teacher/name"] == gen["student/name"] == "test_resnet"
        assert gen["config"]["seed"] == k and gen["config"]["kd"]["temperature"] == 1.0
        assert gen["config"]["kd"]["alpha"] == 1.0 and "generations" not in gen["config"]["kd"]
    assert results["teacher/test_acc"] == results["generations/0/test_acc"]
    assert results["student/test_acc"] == metrics["student/test_acc"] == results["generations/2/test_acc"]
    # the ensembles recomputed from the generation files: probabilities at T = 1 averaged over the generations
    data = build(compose_config(*FAST).data)
    count, targets = len(data.test), data.test.targets
    probs = [file_test_logits(results[f"generations/{k}/checkpoint"], data, count).softmax(-1) for k in range(3)]
    assert results["generations/ensemble_test_acc"] == pytest.approx(accuracy(probs[1] + probs[2], targets), abs=1e-6)
    assert results["generations/ensemble_all_test_acc"] == pytest.approx(accuracy(sum(probs), targets), abs=1e-6)
    for k in range(3):
        assert results[f"generations/{k}/test_acc"] == pytest.approx(accuracy(probs[k], targets), abs=1e-6)


def test_any_kd_config_runs_born_again_and_one_generation_ensemble_is_itself(tmp_path: Path) -> None:
    metrics = run(compose_config(*FAST, *WHOLE_TEACHER, "kd=response", "+kd.generations=1"), tmp_path)
    assert metrics["generations"] == 1
    assert metrics["generations/ensemble_test_acc"] == pytest.approx(metrics["generations/1/test_acc"])
    again = run(compose_config(*FAST, *WHOLE_TEACHER, "kd=response", "+kd.generations=1"), tmp_path / "again")
    assert again["teacher/source"] == "cache"  # generation 0 is cached like any teacher


@pytest.mark.parametrize("value", ["0", "1.5", "many"])
def test_bad_generation_counts_are_refused(value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kd.generations must be an integer >= 1"):
        run(compose_config(*FAST, "kd=born_again", f"kd.generations={value}"), tmp_path)
    assert not any(tmp_path.rglob("*.pt"))
