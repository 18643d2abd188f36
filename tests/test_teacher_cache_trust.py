"""The teacher cache never hands a run the wrong teacher: keys cover what shapes the teacher, partial teachers stay
in their run, names cannot escape the cache, faults in the shared folder are survivable and said out loud."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import timm
import torch
from conftest import FAST, REPO, WHOLE_TEACHER, compose_config
from filelock import FileLock

import kdlab.teacher.cache as cache_module
import kdlab.teacher.single as teacher_module
from kdlab.errors import ConfigError
from kdlab.instantiate import build
from kdlab.models import build_model
from kdlab.models.files import load_into, save_model
from kdlab.run import run
from kdlab.teacher import TeacherSource, prepare_teacher, teacher_recipe
from kdlab.teacher.cache import TEACHERS, entry_lock, entry_path, teacher_cache_key
from kdlab.teacher.output_cache import teacher_outputs_plan
from kdlab.teacher.recipe import outputs_settings
from kdlab.teacher.single import flag_chance_level
from kdlab.training.teacher_outputs import TeacherTaps

# the user's second command, `teacher=tiny student=tiny trainer.max_epochs=1`, with FAST's quick teacher and report
FULL = [o for o in FAST if o != "trainer=fast"] + ["trainer.max_epochs=1", "++trainer.enable_progress_bar=false"]


def cached_teachers(cache: Path) -> list[Path]:
    return sorted((cache / TEACHERS).glob("*.pt"))


def test_a_smoke_test_no_longer_poisons_the_next_full_run(tmp_path: Path, _isolated_cache: Path) -> None:
    """Issue 17's sequence: `trainer=fast`, then a full run. The full run trains its own teacher (and caches it:
    test_end_to_end.py checks that a whole teacher is still reused)."""
    smoke = run(compose_config(*FAST), tmp_path / "smoke")
    assert smoke["teacher/source"] == "trained (partial: not cached)"
    assert smoke["teacher/path"] == str(tmp_path / "smoke" / "teacher.pt") and Path(smoke["teacher/path"]).is_file()
    assert cached_teachers(_isolated_cache) == []  # the partial run wrote no teacher to the shared cache

    full = run(compose_config(*FULL), tmp_path / "full")
    assert full["teacher/source"] == "trained" and cached_teachers(_isolated_cache) == [Path(full["teacher/path"])]
    record = json.loads(Path(full["teacher/path"]).with_suffix(".json").read_text())
    assert record["key"] in full["teacher/path"] and record["content"]["trainer"]["max_epochs"] == 1
    assert "limit_train_batches" not in record["content"]["trainer"]  # the full run's trainer, not the smoke test's


def test_trainer_settings_that_shape_the_teacher_are_in_its_key() -> None:
    key = teacher_cache_key(compose_config())
    for shaping in ("++trainer.gradient_clip_val=1.0", "++trainer.accumulate_grad_batches=2", "trainer.precision=64"):
        assert teacher_cache_key(compose_config(shaping)) != key, shaping
    for shaping in ("trainer=fast", "++trainer.max_steps=10", "data.augment=crop_flip", "teacher_seed=1"):
        assert teacher_cache_key(compose_config(shaping)) != key, shaping
    cosmetic = ["++trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "++trainer.limit_test_batches=3"]
    for setting in [*cosmetic, "trainer.max_epochs=3", "trainer=ddp", "trainer.precision=32-true", "logger=none"]:
        assert teacher_cache_key(compose_config(setting)) == key, setting  # ddp: the teacher trains in one process


def test_the_key_changes_with_torch_or_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    key = teacher_cache_key(compose_config())
    monkeypatch.setattr(cache_module.timm, "__version__", "0.0.1")
    assert teacher_cache_key(compose_config()) != key


def test_an_image_folder_change_changes_the_key(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for split in ("train", "test"):
        (root / split / "cat").mkdir(parents=True)
        (root / split / "cat" / "a.png").write_bytes(b"not read for the key")
    cfg = compose_config("data=imagefolder", f"data.root={root}")
    key = teacher_cache_key(cfg)
    assert teacher_cache_key(cfg) == key  # stable while nothing changes
    stamp = (root / "train" / "cat" / "a.png").stat().st_mtime_ns
    os.utime(root / "train" / "cat" / "a.png", ns=(stamp + 10**9, stamp + 10**9))  # touched
    touched = teacher_cache_key(cfg)
    assert touched != key
    (root / "train" / "cat" / "b.png").write_bytes(b"one more")  # added
    assert teacher_cache_key(cfg) not in (key, touched)


def test_names_from_configs_stay_inside_the_cache(tmp_path: Path, _isolated_cache: Path, monkeypatch) -> None:
    monkeypatch.setattr(teacher_module, "_train", lambda *args: None)  # naming only: skip the training
    evil = ["teacher.name=../../escaped/x", "teacher.model.model_name=test_resnet", *WHOLE_TEACHER]
    cfg = compose_config(*FAST, *evil)
    data = build(cfg.data)
    teacher = build_model(cfg.teacher.model, num_classes=10, in_chans=1, role="teacher")
    source = prepare_teacher(teacher, teacher_recipe(cfg), data, tmp_path / "run")
    outputs = teacher_outputs_plan(outputs_settings(cfg), teacher, data, TeacherTaps())
    for path, kind in ((source.path, "teachers"), (outputs.path, "teacher_outputs")):
        assert path.parent == _isolated_cache / kind and path.name.startswith("escaped_x-"), path
        assert path.with_suffix(".json").is_file()
    assert not (tmp_path / "escaped").exists()  # where cache/teachers/../../escaped/ would have been
    assert entry_path(tmp_path, TEACHERS, "..", "k").parent == tmp_path / TEACHERS


def test_a_rerun_of_a_partial_run_reuses_its_own_teacher(tmp_path: Path, monkeypatch) -> None:
    trained: list[int] = []
    monkeypatch.setattr(teacher_module, "_train", lambda *args: trained.append(1))
    cfg = compose_config(*FAST)
    data = build(cfg.data)

    def teacher() -> torch.nn.Module:
        return build_model(cfg.teacher.model, num_classes=10, in_chans=1, role="teacher")

    first = prepare_teacher(teacher(), teacher_recipe(cfg), data, tmp_path)
    again = prepare_teacher(teacher(), teacher_recipe(cfg), data, tmp_path)
    assert trained == [1] and again.path == first.path == tmp_path / "teacher.pt"
    assert again.kind == "run directory (partial: not cached)" and first.kind == "trained (partial: not cached)"
    other_key = teacher_recipe(compose_config(*FAST, "teacher_seed=5"))
    other = prepare_teacher(teacher(), other_key, data, tmp_path)  # another key
    assert trained == [1, 1] and other.kind == "trained (partial: not cached)"


def test_partial_ensemble_members_are_kept_apart_in_the_run_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(teacher_module, "_train", lambda *args: None)
    members = "teacher.members=[tiny,{config:tiny,seed:1}]"
    cfg = compose_config(*[o for o in FAST if o != "teacher=tiny"], "teacher=ensemble", members)
    data = build(cfg.data)
    ensemble = build_model(cfg.teacher.model, num_classes=10, in_chans=1, role="teacher")
    source = prepare_teacher(ensemble, teacher_recipe(cfg), data, tmp_path)
    assert source.kind == "ensemble" and "teacher/at_chance" in source.report
    kept = sorted(p.name for p in tmp_path.glob("*.pt"))
    assert len(kept) == 2 and all(name.startswith("teacher-test_resnet-") for name in kept)  # one file per member
    assert {source.report[f"teacher/members/test_resnet.{i}/path"] for i in (0, 1)} == {str(tmp_path / n) for n in kept}


def test_a_job_waiting_on_the_lock_says_where_and_for_how_long(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="kdlab.teacher.cache")
    path = tmp_path / TEACHERS / "t-0123.pt"
    path.parent.mkdir(parents=True)
    holder = FileLock(str(path) + ".lock")
    holder.acquire()
    inside = threading.Event()

    def job() -> None:
        with entry_lock(path):
            inside.set()

    waiter = threading.Thread(target=job, daemon=True)
    waiter.start()
    deadline = time.monotonic() + 10
    while "waiting for" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert f"waiting for {path}.lock: another job is writing this cache entry" in caplog.text
    assert not inside.is_set()  # still blocked
    time.sleep(0.3)
    holder.release()
    waiter.join(timeout=10)
    assert inside.is_set()
    waited = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"got {path}.lock after waiting")]
    assert len(waited) == 1 and float(waited[0].split()[-2]) >= 0.3


def test_a_killed_writes_temp_file_is_removed_on_the_next_access(tmp_path: Path) -> None:
    folder = tmp_path / TEACHERS
    folder.mkdir()
    stale, fresh = folder / ".t-0123.pt.k1ll3d.tmp", folder / ".t-4567.pt.wr1t1ng.tmp"
    for tmp in (stale, fresh):
        tmp.write_bytes(b"half a teacher")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    with entry_lock(folder / "t-0123.pt"):
        pass
    assert not stale.exists() and fresh.exists()  # a write in progress (recent) is left alone


def test_a_full_disk_keeps_the_trained_teacher_in_the_run_directory(
    tmp_path: Path, _isolated_cache: Path, monkeypatch, caplog
) -> None:
    real_save = teacher_module.save_model

    def disk_full_in_cache(path, *args, **kwargs):
        if Path(path).is_relative_to(_isolated_cache):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(teacher_module, "save_model", disk_full_in_cache)
    caplog.set_level(logging.WARNING, logger="kdlab.teacher")
    metrics = run(compose_config(*FAST, *WHOLE_TEACHER), tmp_path)
    kept = tmp_path / "teacher.pt"
    assert metrics["teacher/source"] == "trained (not cached: No space left on device)"
    assert metrics["teacher/path"] == str(kept) and kept.is_file()
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "completed"
    assert "could not write teacher test_resnet to the cache" in caplog.text and f"kept it at {kept}" in caplog.text
    assert not any(p.suffix in (".pt", ".json") for p in (_isolated_cache / TEACHERS).iterdir())  # no half entry
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    load_into(model, kept, "test_resnet", 10, 1, data="digits")  # a whole, loadable teacher


def _teacher_file(path: Path, data: str | None) -> Path:
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    meta = {"data": data} if data else {}
    return save_model(path, model, "test_resnet", 10, 1, **meta)


def test_a_teacher_checkpoint_trained_on_other_data_is_refused(tmp_path: Path) -> None:
    other = _teacher_file(tmp_path / "mnist_teacher.pt", "mnist")
    message = rf"checkpoint {other} was trained on data 'mnist' \(this run uses 'digits'\); point teacher.checkpoint"
    with pytest.raises(ConfigError, match=message):
        run(compose_config(*FAST, f"teacher.checkpoint={other}"), tmp_path / "run")
    assert not (tmp_path / "run" / "student.pt").exists() and not (tmp_path / "run" / "checkpoints").exists()
    unlabelled = _teacher_file(tmp_path / "old.pt", None)  # files written before the data was recorded still load
    load_into(timm.create_model("test_resnet", num_classes=10, in_chans=1), unlabelled, "test_resnet", 10, 1, "digits")


def test_a_teacher_at_chance_level_is_reported_loudly(tmp_path: Path, caplog) -> None:
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    with torch.no_grad():  # answers class 3 whatever the image: accuracy = class 3's share of val, about 10 %
        model.get_classifier().weight.zero_()
        model.get_classifier().bias.copy_(torch.arange(10) == 3)
    path = save_model(tmp_path / "constant.pt", model, "test_resnet", 10, 1, data="digits")
    caplog.set_level(logging.WARNING, logger="kdlab.teacher")
    metrics = run(compose_config(*FAST, f"teacher.checkpoint={path}"), tmp_path / "run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["teacher/at_chance"] is True and metrics["teacher/at_chance"] is True
    share = float((build(compose_config(*FAST).data).val.targets == 3).float().mean())
    assert results["teacher/val_acc"] == pytest.approx(share)
    assert f"teacher test_resnet is at chance level: validation accuracy {100 * share:.1f}% <= 1.5 x chance (10.0%" in (
        caplog.text
    )


@pytest.mark.parametrize(("accuracy", "at_chance"), [(0.12, True), (0.15, True), (0.16, False), (0.9, False)])
def test_the_chance_line_is_one_and_a_half_times_chance(accuracy: float, at_chance: bool, caplog) -> None:
    data = build(compose_config().data)  # 10 classes: chance 10 %, line 15 %
    source = TeacherSource("cache", Path("t.pt"), {"teacher/val_acc": accuracy})  # as recorded with the entry
    flag_chance_level(torch.nn.Identity(), "t", data, source)  # the recorded accuracy is used, no pass
    assert source.report["teacher/at_chance"] is at_chance
    assert ("at chance level" in caplog.text) is at_chance


def _fill_cache(monkeypatch, tmp_path: Path) -> list[TeacherSource]:
    """Two teacher entries (seeds 0 and 1) and one teacher-output entry, without training."""
    monkeypatch.setattr(teacher_module, "_train", lambda *args: None)
    sources = []
    for seed in (0, 1):
        cfg = compose_config(*FAST, *WHOLE_TEACHER, f"seed={seed}")
        data = build(cfg.data)
        teacher = build_model(cfg.teacher.model, num_classes=10, in_chans=1, role="teacher")
        sources.append(prepare_teacher(teacher, teacher_recipe(cfg), data, tmp_path))
    teacher_outputs_plan(outputs_settings(cfg), teacher, data, TeacherTaps())
    return sources


def test_cache_cli_lists_shows_and_prunes(tmp_path: Path, _isolated_cache: Path, monkeypatch, capsys) -> None:
    from kdlab.teacher.cache_cli import main

    first, second = _fill_cache(monkeypatch, tmp_path)
    capsys.readouterr()
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and [line.split()[0] for line in lines] == ["teacher", "teacher", "outputs"]
    key = json.loads(first.path.with_suffix(".json").read_text())["key"]
    assert key in lines[0] or key in lines[1]
    assert any("test_resnet" in line and "data=digits_data epochs=1 seed=0" in line for line in lines)

    assert main(["--cache-dir", str(_isolated_cache), "show", key[:8]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["key"] == key and shown["content"]["teacher_seed"] == 0 and shown["kind"] == "teacher"
    assert main(["show", "feedc0de"]) == 2
    assert "kdlab: error: no cache entry with key 'feedc0de'" in capsys.readouterr().err

    old = time.time() - 3 * 86400
    for path in (first.path, first.path.with_suffix(".json")):
        os.utime(path, (old, old))
    assert main(["prune", "--older-than", "2"]) == 0
    out = capsys.readouterr().out
    assert "removed teacher  test_resnet" in out and key in out and "removed 1 entry" in out
    assert not any(first.path.parent.glob(f"{first.path.stem}*")) and second.path.is_file()  # .pt, .json, .lock
    assert main(["prune", "--all"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert main(["list"]) == 0 and "no cache entries" in capsys.readouterr().out
    assert main(["prune", "--older-than", "nan"]) == 2
    assert "--older-than must be a number of days >= 0, got nan" in capsys.readouterr().err


def test_cache_cli_help_and_module_entry_point(_isolated_cache: Path, capsys) -> None:
    from kdlab.teacher.cache_cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    usage = capsys.readouterr().out
    assert exit_.value.code == 0 and all(command in usage for command in ("list", "show KEY", "prune"))
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab.teacher.cache_cli", "list"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and f"no cache entries under {_isolated_cache}" in proc.stdout, proc.stderr
