"""Every ``kd=<name>`` runs end to end on the embedded data, with the default pair and a second heterogeneous pair,
logs every weighted loss by name, and DKD's warm-up sees the real epoch through the LightningModule."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from conftest import CONF, FAST, compose_config

from kdlab.run import run
from kdlab.terms import DKD

# Chains and cohorts (born_again, takd, dml) are several runs or networks: tests/test_born_again.py, test_peers.py
# chains, cohorts and a generator phase have their own end-to-end tests (test_born_again, test_peers, test_data_free)
SEVERAL_NETWORKS = ("generations:", "assistants:", "peers:", "transfer: generator")
METHODS = sorted(
    p.stem for p in (CONF / "kd").glob("*.yaml") if not any(key in p.read_text() for key in SEVERAL_NETWORKS)
)
# kd=deit reads a distillation token, which only a DeiT student has: in both pairs it distils into that student
DIST_TOKEN_STUDENT = {"DeiTDistillation": "student=deit_tiny_distilled"}
PAIRS = {
    "default": [],  # resnet18 -> test_resnet (conf/student/tiny.yaml)
    "tiny_to_mobilenet": ["teacher=tiny", "student=tiny_mobilenet"],  # test_resnet -> mobilenetv3_small_050
}
ONE_BATCH = ["trainer=fast", "trainer.limit_train_batches=1", "teacher.max_epochs=1", "data.batch_size=32"]
ONE_BATCH += ["post.latency.repeats=2", "post.latency.warmup=1"]  # the report times each model: keep it short


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One teacher cache for the module: each pair's teacher is trained once, then every method reuses it."""
    return tmp_path_factory.mktemp("kdlab-cache")


def logged_columns(out_dir: Path) -> dict[str, list[float]]:
    rows = list(csv.DictReader((out_dir / "csv" / "version_0" / "metrics.csv").open()))
    return {key: [float(r[key]) for r in rows if r.get(key)] for key in rows[0]}


# Logit-only methods have no connector that the second pair's other channel counts could break, and
# test_logit_methods_cross_family already runs each across model families: their second-pair run is in the slow tier.
LOGIT_ONLY = {"none", "response", "dkd", "dist", "ls", "ctkd", "tfkd", "cskd", "deit"}
CASES = [
    pytest.param(method, pair, marks=[pytest.mark.slow] if pair != "default" and method in LOGIT_ONLY else [])
    for method in METHODS
    for pair in sorted(PAIRS)
]


@pytest.mark.parametrize(("method", "pair"), CASES)
def test_method_runs_end_to_end(method: str, pair: str, shared_cache: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KDLAB_CACHE", str(shared_cache))
    text = (CONF / "kd" / f"{method}.yaml").read_text()
    student = [override for term, override in DIST_TOKEN_STUDENT.items() if term in text]
    cfg = compose_config(
        *ONE_BATCH, *PAIRS[pair], f"kd={method}", *student, "logger=csv", "trainer.log_every_n_steps=1"
    )
    metrics = run(cfg, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed" and results["student/test_acc"] == metrics["student/test_acc"]
    assert 0.0 <= metrics["student/test_acc"] <= 1.0 and math.isfinite(metrics["student/test_kl_to_teacher"])
    logged = logged_columns(tmp_path)
    for name in ["ce", *cfg.kd.weights]:
        values = logged.get(f"train/loss_{name}_step")
        assert values and all(math.isfinite(v) for v in values), f"kd={method}: train/loss_{name} was not logged"
    assert logged["train/loss_step"] and all(math.isfinite(v) for v in logged["train/loss_step"])


def test_dkd_warmup_follows_the_training_epoch(tmp_path: Path, monkeypatch) -> None:
    """The module sets ``term.current_epoch`` before each step, so DKD's factor ramps 1/W, 2/W, … epoch by epoch."""
    seen: list[tuple[int, float]] = []
    forward = DKD.forward

    def recording(self, student, teacher, batch):
        seen.append((self.current_epoch, self.warmup_factor()))
        return forward(self, student, teacher, batch)

    monkeypatch.setattr(DKD, "forward", recording)
    cfg = compose_config(*FAST, "kd=dkd", "trainer.max_epochs=3", "kd.terms.dkd.warmup_epochs=2", "data.batch_size=16")
    run(cfg, tmp_path)
    assert seen == [(0, 0.5), (0, 0.5), (1, 1.0), (1, 1.0), (2, 1.0), (2, 1.0)]
