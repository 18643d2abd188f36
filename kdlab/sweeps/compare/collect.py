"""Find every job of one or more sweeps and read what it left: results.json, or only Hydra's overrides if it died."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kdlab import result_keys
from kdlab.errors import ConfigError

SEED_KEY = "seed"
# Overrides that say where a run wrote or logged, or which preset set the grid (its values are in the other overrides):
# never a column, never part of a group.
IGNORED_PREFIXES = ("hydra", "logger", "cache_dir", "paths", "tags", "hparams_search")


@dataclass
class Run:
    """One job of a sweep as the report sees it."""

    path: Path
    status: str  # completed | failed | missing (no results.json: still running, killed, or crashed hard)
    overrides: dict[str, str] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    repeat_of: Path | None = None  # a later run with the same config and seed: statistics count only that one

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def counted(self) -> bool:
        """Completed and not repeated later: the runs that means, deltas and plots are made of."""
        return self.ok and self.repeat_of is None

    def metric(self, key: str) -> float | None:
        value = self.metrics.get(key)
        return float(value) if isinstance(value, int | float) and not math.isnan(value) else None

    def setting(self, key: str) -> str | None:
        """The value this run used for ``key`` (a group like ``kd`` or a dotted config path), in one canonical form."""
        if key in self.choices:
            return canonical(self.choices[key])
        node: Any = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is not None and not (isinstance(node, str) and "${" in node):
            return canonical(node)
        if key in self.overrides:
            return canonical(self.overrides[key])
        return None

    @property
    def method(self) -> str:
        return str(self.choices.get("kd") or self.metrics.get(result_keys.KD_METHOD) or "?")


def canonical(value: Any) -> str:
    """One spelling per value, whether it came from an override string (``2``, ``[1,2]``) or a config (2.0, [1, 2])."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads 1e3 as text, Hydra as a number
            except ValueError:
                return value
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if isinstance(value, int | float):
        return f"{float(value):g}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return str(value)


def parse_overrides(lines: Iterable[str]) -> dict[str, str]:
    """``["kd.alpha=0.3", "+x=1"]`` → ``{"kd.alpha": "0.3", "x": "1"}``; drops deletions (``~key``) and hydra.*."""
    parsed = {}
    for line in lines:
        key, sep, value = str(line).partition("=")
        key = key.lstrip("+")
        if sep and not key.startswith("~") and not key.startswith(IGNORED_PREFIXES):
            parsed[key] = value
    return parsed


def _read_overrides_yaml(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def read_run(job_dir: Path) -> Run:
    """The job in ``job_dir``; a missing or unreadable results.json becomes a run with status ``missing``."""
    results_path = job_dir / "results.json"
    try:
        results = json.loads(results_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        reason = "no results.json" if not results_path.exists() else f"unreadable results.json ({error})"
        return Run(job_dir, "missing", parse_overrides(_read_overrides_yaml(job_dir)), error=reason)
    overrides = results.get("overrides") or _read_overrides_yaml(job_dir)
    metrics = {k: v for k, v in results.items() if not isinstance(v, dict | list)}
    return Run(
        path=job_dir,
        status=str(results.get("status", "completed")),
        overrides=parse_overrides(overrides),
        choices={k: str(v) for k, v in (results.get("choices") or {}).items()},
        metrics=metrics,
        config=results.get("config") or {},
        error=results.get("error"),
    )


def job_dirs(root: Path) -> list[Path]:
    """Folders under ``root`` that hold a job: a results.json, or Hydra's ``.hydra/overrides.yaml`` of a started job."""
    found = {p.parent for p in root.rglob("results.json")}
    found |= {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
    return sorted(d for d in found if "wandb" not in d.relative_to(root).parts)


def collect_runs(roots: Sequence[str | Path]) -> list[Run]:
    """Every job under the given sweep (or single-run) folders, in folder order."""
    runs, seen = [], set()
    for root in map(Path, roots):
        if not root.is_dir():
            raise ConfigError(f"{root} is not a folder (give a multirun dir such as multirun/kd_grid-…)")
        for job_dir in job_dirs(root):
            if job_dir.resolve() not in seen:
                seen.add(job_dir.resolve())
                runs.append(read_run(job_dir))
    if not runs:
        raise ConfigError(f"no results.json under {', '.join(map(str, roots))}")
    return runs
