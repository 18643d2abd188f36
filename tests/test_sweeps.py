"""Every W&B sweep file launches runs that compose, its local Hydra twin sweeps the same grid, launchers compose."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import CONF, REPO
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from kdlab.sweeps.compare.collect import canonical
from kdlab.sweeps.sweepfile import agent_command, check_sweep_file, load_sweep, parameter_sets

SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))


def test_the_three_studies_are_there() -> None:
    assert {p.stem for p in SWEEPS} >= {"kd_grid", "feature_grid", "kd_seeds"}
    grid = load_sweep(REPO / "sweeps" / "kd_grid.yaml")["parameters"]
    assert len(grid["kd.temperature"]["values"]) >= 3 and len(grid["kd.alpha"]["values"]) >= 3
    seeds = load_sweep(REPO / "sweeps" / "kd_seeds.yaml")["parameters"]
    assert "none" in seeds["kd"]["values"] and len(seeds["seed"]["values"]) >= 3


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_launches_runs_that_compose(path: Path) -> None:
    assert check_sweep_file(path, CONF) == []


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_agent_renders_hydra_arguments_and_a_per_run_group_and_dir(path: Path) -> None:
    sweep = load_sweep(path)
    params = next(parameter_sets(sweep))
    argv = agent_command(sweep, params, sweep_id="abc123", run_id="r1")
    assert argv[:4] == ["/usr/bin/env", "python", "-m", "kdlab"]
    assert all(f"{key}=" in " ".join(argv) for key in params) and not any(a.startswith("--") for a in argv)
    assert f"logger.group={path.stem}-abc123" in argv
    assert f"hydra.run.dir=outputs/sweeps/{path.stem}-abc123/${{oc.env:WANDB_RUN_ID}}" in argv
    assert sweep["metric"] == {"name": "student/best_val_acc", "goal": "maximize"}


def _write_variant(tmp_path: Path, name: str, edit) -> Path:
    sweep = load_sweep(REPO / "sweeps" / name)
    edit(sweep)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_a_misspelled_key_fails_the_check(tmp_path: Path) -> None:
    path = _write_variant(
        tmp_path,
        "kd_grid.yaml",
        lambda s: s["parameters"].update({"kd.temprature": s["parameters"].pop("kd.temperature")}),
    )
    problems = check_sweep_file(path, CONF)
    assert problems and "kd.temprature" in problems[0] and "did you mean 'kd.temperature'" in problems[0]


def test_a_missing_group_option_and_a_bad_value_fail_the_check(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "kd_seeds.yaml", lambda s: s["parameters"]["kd"]["values"].append("respons"))
    assert any("kd=respons" in p for p in check_sweep_file(path, CONF))
    bad_alpha = {"kd.temperature": {"values": [2, 4]}, "kd.alpha": {"value": 1.5}}
    path = _write_variant(tmp_path, "kd_grid.yaml", lambda s: s.update(parameters=bad_alpha))
    problems = check_sweep_file(path, CONF)
    assert len(problems) == 2 and all("kd.alpha must be in [0, 1], got 1.5" in p for p in problems)


def test_hyphenated_arguments_are_rejected(tmp_path: Path) -> None:
    path = _write_variant(
        tmp_path, "kd_grid.yaml", lambda s: s.update(command=[c.replace("_no_hyphens", "") for c in s["command"]])
    )
    assert any("args_no_hyphens" in p for p in check_sweep_file(path, CONF))


def _hydra_sweep(name: str, *extra: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"hparams_search={name}", *extra], return_hydra_config=True)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_local_twin_sweeps_the_same_grid(path: Path) -> None:
    """``python -m kdlab -m hparams_search=<name>`` runs the W&B file's grid, with the same fixed choices."""
    sweep = load_sweep(path)
    cfg = _hydra_sweep(path.stem)
    parser = OverridesParser.create()
    local = {}
    for key, values in cfg.hydra.sweeper.params.items():
        override = parser.parse_override(f"{key}={values}")
        local[key] = sorted(canonical(v) for v in override.sweep_string_iterator())
    swept = {
        k: sorted(canonical(v) for v in spec["values"]) for k, spec in sweep["parameters"].items() if "values" in spec
    }
    assert local == swept
    for key, spec in sweep["parameters"].items():  # constants (teacher_seed: 0) are set in the twin too
        if "value" in spec:
            assert canonical(OmegaConf.select(cfg, key)) == canonical(spec["value"])
    fixed = [a for a in agent_command(sweep, {}, "x", "y") if "=" in a and not a.startswith(("hydra.", "logger"))]
    for group, option in (a.split("=", 1) for a in fixed):
        assert cfg.hydra.runtime.choices[group] == option
    assert Path(cfg.hydra.sweep.dir).name.startswith(f"{path.stem}-")


@pytest.mark.parametrize(
    ("launcher", "target"),
    [("joblib", "JoblibLauncher"), ("submitit_slurm", "SlurmLauncher"), ("submitit_local", "LocalLauncher")],
)
def test_parallel_and_slurm_launchers_compose(launcher: str, target: str) -> None:
    cfg = _hydra_sweep("kd_grid", f"hydra/launcher={launcher}")
    assert cfg.hydra.launcher._target_.endswith(target)
    assert cfg.hydra.callbacks.sweep_report._target_ == "kdlab.sweeps.callback.SweepReport"
