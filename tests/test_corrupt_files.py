"""Torn, foreign or mismatched checkpoints and cache files fail with one line naming the file and what to do;
writes are atomic, so a failure while writing leaves the old file whole."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FAST, WHOLE_TEACHER, compose_config

from kdlab.errors import ConfigError
from kdlab.run import run
from kdlab.teacher.cache import TEACHERS, entry_path, teacher_cache_key
from kdlab.training.checkpoint_io import AtomicCheckpointIO


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One finished run: its directory (checkpoints/last.ckpt) and its teacher file (a partial one, in the run)."""
    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:  # module-scoped: the per-test cache fixture is not active here
        patch.setenv("KDLAB_CACHE", str(root / "cache"))
        metrics = run(compose_config(*FAST), root / "run")
    return root / "run", Path(metrics["teacher/path"])


def _copy_run(finished_dir: Path, to: Path) -> Path:
    (to / "checkpoints").mkdir(parents=True)
    (to / "checkpoints" / "last.ckpt").write_bytes((finished_dir / "checkpoints" / "last.ckpt").read_bytes())
    return to / "checkpoints" / "last.ckpt"


def test_torn_lightning_checkpoint_names_the_file_and_the_fix(finished, tmp_path: Path) -> None:
    last = _copy_run(finished[0], tmp_path)
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # what a non-atomic write killed midway leaves
    with pytest.raises(ConfigError, match=rf"checkpoint {last} is corrupt .*delete it, or pass resume=false"):
        run(compose_config(*FAST), tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_foreign_file_in_place_of_a_checkpoint_is_refused(finished, tmp_path: Path) -> None:
    last = _copy_run(finished[0], tmp_path)
    torch.save({"weights": torch.zeros(3)}, last)
    with pytest.raises(ConfigError, match=rf"checkpoint {last} is not a Lightning training checkpoint"):
        run(compose_config(*FAST), tmp_path)


def test_checkpoint_of_another_architecture_is_refused_before_any_training(finished, tmp_path: Path) -> None:
    last = _copy_run(finished[0], tmp_path)
    with pytest.raises(
        ConfigError, match=rf"checkpoint {last} belongs to another run: student=test_resnet \(this run has resnet18\)"
    ):
        run(compose_config(*FAST, "student=resnet18"), tmp_path)
    assert not any((tmp_path / "checkpoints").glob("epoch=*"))


def test_resume_true_without_a_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"resume=true but .*last.ckpt does not exist; pass resume=auto"):
        run(compose_config(*FAST, "resume=true"), tmp_path)


def test_torn_teacher_cache_file_names_the_file_and_the_fix(finished, tmp_path: Path, monkeypatch) -> None:
    _, teacher = finished
    cache = tmp_path / "cache"
    monkeypatch.setenv("KDLAB_CACHE", str(cache))
    cfg = compose_config(*FAST, *WHOLE_TEACHER)  # a whole teacher: one the cache holds
    torn = entry_path(cache, TEACHERS, cfg.teacher.name, teacher_cache_key(cfg))  # where this run looks for it
    torn.parent.mkdir(parents=True)
    torn.write_bytes(teacher.read_bytes()[:1000])
    with pytest.raises(ConfigError, match=rf"checkpoint {torn} is corrupt or not a kdlab model file .*delete it"):
        run(cfg, tmp_path / "run")


def test_a_save_that_fails_midway_leaves_the_old_checkpoint_whole(tmp_path: Path) -> None:
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("killed while writing")

    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "step": 1}, path)
    with pytest.raises(RuntimeError, match="killed while writing"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "step": 2, "bad": Unpicklable()}, path)
    assert io.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_a_checkpoint_that_would_run_code_on_load_is_refused(tmp_path: Path) -> None:
    """``weights_only=True``: a pickle that calls a function when loaded is rejected, not executed."""

    class RunsCodeOnLoad:
        def __reduce__(self):
            return (print, ("this must never be printed",))

    path = tmp_path / "checkpoints" / "last.ckpt"
    path.parent.mkdir()
    torch.save({"state_dict": {}, "loops": {}, "optimizer_states": [], "payload": RunsCodeOnLoad()}, path)
    with pytest.raises(ConfigError, match=rf"checkpoint {path} is corrupt or not a Lightning checkpoint"):
        AtomicCheckpointIO().load_checkpoint(path)
