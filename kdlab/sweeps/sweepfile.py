"""Check a W&B sweep file against kdlab before ``wandb sweep`` uploads it: ``kdlab-sweepfile sweeps/*.yaml``.

It renders the commands ``wandb agent`` would launch with wandb's own helpers (``create_sweep_command`` fills
``${envvar:…}``, ``create_sweep_command_args`` builds ``${args_no_hyphens}`` as ``key=str(value)``), then composes each
one with Hydra and validates it, so a misspelled key or a value Hydra cannot parse fails here, not in job 7 of 9.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from kdlab import paths
from kdlab.run.validate import validate_config
from kdlab.sweeps.compare.collect import canonical

# A subset of W&B's sweep schema (github.com/wandb/sweeps, src/sweeps/config/schema.json).
TOP_LEVEL_KEYS = {
    "apiVersion", "kind", "controller", "description", "program", "job", "image_uri", "entity", "project",
    "method", "command", "name", "run_cap", "metric", "metrics", "scheduler", "early_terminate", "parameters",
}  # fmt: skip
METHODS = {"grid", "random", "bayes", "custom"}
GOALS = {"minimize", "maximize"}
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
ENTRY = ["-m", "kdlab"]  # the command must run ``python -m kdlab``; what follows it are Hydra overrides
_ABSENT = object()


def load_sweep(path: str | Path) -> dict[str, Any]:
    sweep = yaml.safe_load(Path(path).read_text())
    if not isinstance(sweep, dict):
        raise ValueError(f"{path}: a sweep file is a YAML mapping")
    return sweep


def structure_problems(sweep: dict[str, Any]) -> list[str]:
    """What W&B would reject, or what would make the agent launch something Hydra cannot read."""
    problems = [
        f"unknown top-level key '{k}' (W&B allows {sorted(TOP_LEVEL_KEYS)})" for k in sweep if k not in TOP_LEVEL_KEYS
    ]
    if sweep.get("method") not in METHODS:
        problems.append(f"method must be one of {sorted(METHODS)}, got {sweep.get('method')!r}")
    metric = sweep.get("metric") or {}
    if not metric.get("name") or metric.get("goal") not in GOALS:
        problems.append(f"metric needs a name and a goal in {sorted(GOALS)}, got {metric!r}")
    params = sweep.get("parameters") or {}
    if not params:
        problems.append("parameters is empty")
    for name, spec in params.items():
        if not PARAMETER_NAME.match(str(name)):
            problems.append(f"parameter name '{name}' is not allowed by W&B")
        if not isinstance(spec, dict) or not ("value" in spec or spec.get("values") or {"min", "max"} <= set(spec)):
            problems.append(f"parameter '{name}' needs `values: [...]`, `value: x` or `min`/`max`")
    command = [str(c) for c in sweep.get("command") or []]
    if "${args_no_hyphens}" not in command:
        problems.append("command must pass the parameters as ${args_no_hyphens} (key=value, what Hydra reads)")
    if not _contains(command, ENTRY):
        problems.append(f"command must run `{' '.join(ENTRY)}`, got {command}")
    return problems


def _contains(command: Sequence[str], part: Sequence[str]) -> bool:
    return any(list(command[i : i + len(part)]) == list(part) for i in range(len(command)))


def _choices(spec: dict[str, Any]) -> list[Any]:
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    return [spec["min"], spec["max"]]  # distributions: their two ends


def parameter_sets(sweep: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every grid point (for ``random``/``bayes``: every listed value and each range's two ends, combined)."""
    names = list(sweep.get("parameters") or {})
    for values in itertools.product(*(_choices(sweep["parameters"][n]) for n in names)):
        yield dict(zip(names, values, strict=True))


def agent_command(sweep: dict[str, Any], params: dict[str, Any], sweep_id: str, run_id: str) -> list[str]:
    """The argv ``wandb agent`` runs for ``params``, built as ``wandb_agent.Agent._command_run`` builds it."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    with mock.patch.dict(os.environ, {"WANDB_SWEEP_ID": sweep_id, "WANDB_RUN_ID": run_id}):
        template = create_sweep_command([str(c) for c in sweep.get("command") or []])  # it edits its argument
    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    macros.update(interpreter=["python"], program=[str(sweep.get("program", ""))], env=["/usr/bin/env"])
    argv: list[str] = []
    for chunk in template:
        argv += (macros.get(chunk[2:-1]) or []) if chunk.startswith("${") and chunk.endswith("}") else [chunk]
    return argv


def hydra_overrides(argv: Sequence[str]) -> list[str]:
    """The arguments after ``-m kdlab``."""
    for i in range(len(argv)):
        if list(argv[i : i + len(ENTRY)]) == ENTRY:
            return list(argv[i + len(ENTRY) :])
    return []


def _leaf_keys(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{prefix}{key}"
            yield from _leaf_keys(value, f"{prefix}{key}.")


def key_problems(cfg: DictConfig, config_dir: Path, params: dict[str, Any]) -> list[str]:
    """Each parameter must name a config group (with an option file per value) or a key the composed config has."""
    problems = []
    known = list(_leaf_keys(OmegaConf.to_container(cfg, resolve=False)))
    for key, spec in params.items():
        group = config_dir / key.replace(".", "/")
        if group.is_dir():
            for value in _choices(spec):
                if not (group / f"{value}.yaml").is_file():
                    options = sorted(p.stem for p in group.glob("*.yaml"))
                    problems.append(f"'{key}={value}': no {group}/{value}.yaml (options: {options})")
        elif OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            hint = "".join(f" (did you mean '{m}'?)" for m in difflib.get_close_matches(key, known, n=1))
            problems.append(f"parameter '{key}' is not a key of the config{hint}")
    return problems


def check_sweep_file(path: str | Path, config_dir: str | Path) -> list[str]:
    """Every problem found in the sweep file at ``path``; an empty list means every run it launches composes."""

    sweep, config_dir = load_sweep(path), Path(config_dir).resolve()
    problems = structure_problems(sweep)
    if problems:
        return problems
    fixed = [o for o in hydra_overrides(agent_command(sweep, {}, "SWEEPID", "RUNID")) if o]
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        problems += key_problems(compose("config", overrides=fixed), config_dir, sweep["parameters"])
        if problems:
            return problems
        for number, params in enumerate(parameter_sets(sweep)):
            argv = agent_command(sweep, params, "SWEEPID", f"run{number}")
            overrides = hydra_overrides(argv)
            try:
                with mock.patch.dict(os.environ, {"WANDB_RUN_ID": f"run{number}"}):
                    cfg = compose("config", overrides=overrides, return_hydra_config=True)
                    OmegaConf.resolve(cfg.hydra.run)
                validate_config(cfg)
                problems += _landed(cfg, params, config_dir)
            except Exception as error:  # Hydra's and ConfigError: report them all, keep checking the rest
                problems.append(f"run {' '.join(overrides)}: {type(error).__name__}: {error}")
    return problems


def _landed(cfg: DictConfig, params: dict[str, Any], config_dir: Path) -> list[str]:
    """Each parameter reached the composed config (no later fixed argument in the command overrode it)."""

    problems = []
    for key, value in params.items():
        is_group = (config_dir / key.replace(".", "/")).is_dir()
        got = cfg.hydra.runtime.choices.get(key) if is_group else OmegaConf.select(cfg, key)
        got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
        if canonical(got) != canonical(value):
            problems.append(f"'{key}' was swept to {value!r} but the composed config has {got!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kdlab.sweeps.sweepfile", description="Check W&B sweep files against kdlab's config tree."
    )
    parser.add_argument("sweep_files", nargs="+", type=Path, help="sweep YAML files, e.g. sweeps/*.yaml")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.sweep_files:
        problems = check_sweep_file(path, paths.config_dir())
        failed += bool(problems)
        print(f"{path}: " + ("ok" if not problems else "\n  " + "\n  ".join(problems)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
