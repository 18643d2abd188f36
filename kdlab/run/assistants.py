"""``kd=takd``: teacher-assistant knowledge distillation (Mirzadeh et al., "Improved Knowledge Distillation via
Teacher Assistant", AAAI 2020, arXiv:1902.03393): ``teacher → assistant(s) → student``.

Link 1 distils the configured teacher into ``kd.assistants[0]``, link k+1 distils link k's network into the next
assistant, and the last link distils the last assistant into the student, each with the ``kd`` config's terms (TAKD:
standard KD). Every link is one ordinary :func:`kdlab.run.single.run` in its own folder (``link<k>/``), whose
teacher is the previous link's saved student (``student.pt``, last epoch: kdlab's student keeps the last epoch,
where the paper's code keeps the best-on-test one). results.json lists each link's network and accuracy
(``chain/<k>/…``, 0 = the teacher).
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.table import Table

from kdlab import result_keys
from kdlab.errors import ConfigError
from kdlab.run.born_again import checkpoint_teacher
from kdlab.run.members import member_nodes
from kdlab.run.results import write_results
from kdlab.run.single import run_single
from kdlab.run.summary import print_summary
from kdlab.run.validate import has_teacher, validate_config

log = logging.getLogger(__name__)

# The last link's numbers against its own teacher (the last assistant), not the chain's teacher: these, its
# compression report (report/…) and its per-class deltas vs the teacher stay in link<k>/results.json;
# chain/<k>/test_agreement gives each link's agreement with the network it learned from.
RELATIVE_TO_ITS_TEACHER = (
    result_keys.STUDENT_TEST_AGREEMENT,
    result_keys.STUDENT_TEST_KL,
    *result_keys.INHERITANCE_KEYS,
)


def link_config(cfg: DictConfig, student: DictConfig, teacher: DictConfig | dict) -> DictConfig:
    """One link's single-run config: ``student`` distilled from ``teacher``, without ``kd.assistants``."""
    link = copy.deepcopy(cfg)
    with open_dict(link):
        link.kd.pop("assistants")
        link.student = copy.deepcopy(student)
        link.teacher = copy.deepcopy(teacher)
    return link


def chain_configs(cfg: DictConfig) -> list[DictConfig]:
    """Every link's config, checked before the first link trains (a later link's teacher file does not exist yet)."""
    if not has_teacher(cfg):
        raise ConfigError("kd=takd distils a teacher through assistants: it needs a teacher, got teacher=none")
    networks = [*member_nodes(cfg.kd.assistants, "kd.assistants"), cfg.student]
    links = [link_config(cfg, networks[0], cfg.teacher)]
    for previous, network in itertools.pairwise(networks):
        links.append(link_config(cfg, network, checkpoint_teacher(previous, None, cfg.trainer.max_epochs)))
    for link in links:
        validate_config(link)
    return links


def run_assistant_chain(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run the links in order, each taught by the file the previous one wrote; results.json reports every link."""
    started = time.perf_counter()
    links, runs = chain_configs(cfg), []
    for k, link in enumerate(links, start=1):
        if runs:
            with open_dict(link):
                link.teacher.checkpoint = runs[-1][result_keys.STUDENT_CHECKPOINT]
        log.info("TAKD link %d of %d: %s → %s", k, len(links), link.teacher.name, link.student.name)
        runs.append(run_single(link, out_dir / f"link{k}"))
    metrics = chain_metrics(runs)
    metrics[result_keys.WALL_TIME] = time.perf_counter() - started
    write_results(cfg, out_dir, metrics)
    print_summary(metrics)
    print_chain(metrics)
    return metrics


def chain_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The last link's student against the first link's teacher, and ``chain/<k>/…`` for every network."""
    metrics = {k: v for k, v in runs[-1].items() if not k.startswith("teacher/") and k not in RELATIVE_TO_ITS_TEACHER}
    metrics.update({k: v for k, v in runs[0].items() if k.startswith("teacher/")})
    teacher_acc, student_acc = metrics[result_keys.TEACHER_TEST_ACC], metrics[result_keys.STUDENT_TEST_ACC]
    metrics[result_keys.RETENTION] = student_acc / teacher_acc if teacher_acc else None
    teacher_params = metrics[result_keys.TEACHER_PARAMS]
    metrics[result_keys.PARAM_RATIO] = teacher_params / metrics[result_keys.STUDENT_PARAMS] if teacher_params else None
    metrics[result_keys.CHAIN] = len(runs)
    first, student = runs[0], (result_keys.STUDENT_NAME, result_keys.STUDENT_TEST_ACC, result_keys.STUDENT_CHECKPOINT)
    networks = [
        (first[result_keys.TEACHER_NAME], first[result_keys.TEACHER_TEST_ACC], first[result_keys.TEACHER_PATH]),
        *(tuple(r[key] for key in student) for r in runs),
    ]
    for k, (name, acc, path) in enumerate(networks):
        metrics.update(
            {
                result_keys.chain_key(k, "name"): name,
                result_keys.chain_key(k, "test_acc"): acc,
                result_keys.chain_key(k, "checkpoint"): str(path),
            }
        )
        if k:
            metrics[result_keys.chain_key(k, "test_agreement")] = runs[k - 1].get(result_keys.STUDENT_TEST_AGREEMENT)
    return {k: v for k, v in metrics.items() if not k.startswith("report/") and "delta_vs_teacher" not in k}


def print_chain(metrics: dict[str, Any]) -> None:
    table = Table(title="teacher-assistant chain")
    for column in ("link", "role", "name", "test acc"):
        table.add_column(column, justify="right" if column == "test acc" else "left")
    last = metrics[result_keys.CHAIN]
    for k in range(last + 1):
        role = "teacher" if k == 0 else "student" if k == last else "assistant"
        name, acc = metrics[result_keys.chain_key(k, "name")], metrics[result_keys.chain_key(k, "test_acc")]
        table.add_row(str(k), role, str(name), f"{100 * acc:.2f}%")
    Console().print(table)
