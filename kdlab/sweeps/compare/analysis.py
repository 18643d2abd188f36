"""What a sweep report computes: which settings vary, the kd=none baseline delta, seed groups and the best one."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kdlab import result_keys
from kdlab.sweeps.compare.collect import SEED_KEY, Run

BASELINE_METHOD = "none"
DELTA = "delta_vs_baseline"
# Config parts that a kd=none baseline may differ in and still be the baseline of a run (everything else must match).
NOT_CONTEXT = frozenset(
    {"kd", "teacher", "teacher_seed", "seed", "logger", "cache_dir", "paths", "tags", "hparams_search"}
)


def _keys_in_order(runs: Sequence[Run]) -> list[str]:
    """Override keys as first given, config groups (``kd``, ``student``) before plain keys (``kd.alpha``)."""
    keys = dict.fromkeys(key for run in runs for key in run.overrides)
    groups = {key for run in runs for key in run.choices}
    return sorted(keys, key=lambda k: k not in groups)


def swept_keys(runs: Sequence[Run]) -> list[str]:
    """Override keys whose value differs between runs (the sweep's axes), in the order they were given."""
    return [k for k in _keys_in_order(runs) if len({run.setting(k) for run in runs}) > 1]


def common_settings(runs: Sequence[Run]) -> dict[str, str]:
    """Overrides every run shares (``teacher=tiny``, …), shown once above the tables instead of as columns."""
    swept = set(swept_keys(runs))
    return {k: str(runs[0].setting(k)) for k in _keys_in_order(runs) if k not in swept}


def _config_key(config: dict, leave_out: frozenset[str] | set[str]) -> str:
    """The config minus ``leave_out`` as text, numbers as floats (an override gives 4 where the YAML says 4.0)."""

    def normal(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: normal(v) for k, v in node.items()}
        if isinstance(node, list):
            return [normal(v) for v in node]
        return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else node

    return json.dumps(normal({k: v for k, v in config.items() if k not in leave_out}), sort_keys=True, default=str)


def _context(run: Run) -> str | None:
    return _config_key(run.config, NOT_CONTEXT) if run.ok and run.config else None


def mark_repeats(runs: Sequence[Run]) -> int:
    """Mark completed runs whose whole config (seed included) a later run repeats, e.g. the grid point T=4, alpha=0.9
    seed 0 also run by a seeds sweep: one experiment must not count as two seeds. Returns how many were marked."""
    latest = {key: run for run in runs if (key := _identity(run))}
    marked = 0
    for run in runs:
        if (key := _identity(run)) and latest[key] is not run:
            run.repeat_of, marked = latest[key].path, marked + 1
    return marked


def _identity(run: Run) -> str | None:
    return _config_key(run.config, {"logger", "cache_dir", "paths", "tags"}) if run.ok and run.config else None


def annotate_deltas(runs: Sequence[Run], metric: str = result_keys.STUDENT_TEST_ACC) -> int:
    """Set ``metrics[DELTA]`` = metric − mean metric of the kd=none runs with the same data, student, optimiser and
    trainer (any seed). Returns how many completed distilled runs had no such baseline."""
    baselines: dict[str, list[float]] = {}
    for run in runs:
        value, context = run.metric(metric), _context(run)
        if run.method == BASELINE_METHOD and run.counted and value is not None and context:
            baselines.setdefault(context, []).append(value)
    unmatched = 0
    for run in runs:
        values = baselines.get(_context(run) or "")
        if values and run.metric(metric) is not None:
            run.metrics[DELTA] = run.metric(metric) - statistics.fmean(values)
        elif run.ok and run.method != BASELINE_METHOD:
            unmatched += 1
    return unmatched


@dataclass
class Group:
    """Runs that differ only in their seed: one configuration, reported as mean ± std over seeds."""

    settings: dict[str, str]
    runs: list[Run]

    @property
    def completed(self) -> list[Run]:
        """The group's counted runs (completed, repeats left out): one per seed."""
        return [run for run in self.runs if run.counted]

    def values(self, metric: str) -> list[float]:
        return [v for run in self.completed if (v := run.metric(metric)) is not None]

    def mean(self, metric: str) -> float | None:
        values = self.values(metric)
        return statistics.fmean(values) if values else None

    def std(self, metric: str) -> float | None:
        """Sample standard deviation over seeds; None with fewer than two runs."""
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else None

    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.settings.items()) or "(all runs)"


def group_by_setting(runs: Sequence[Run]) -> list[Group]:
    """One group per combination of the swept settings other than the seed."""
    keys = [k for k in swept_keys(runs) if k != SEED_KEY]
    groups: dict[tuple, Group] = {}
    for run in runs:
        settings = {k: run.setting(k) or "—" for k in keys}
        groups.setdefault(tuple(settings.values()), Group(settings, [])).runs.append(run)
    return list(groups.values())


TIE_BREAK = (
    result_keys.STUDENT_VAL_ACC
)  # final-epoch val accuracy: ties on best val (small val sets) are still broken on val


def rank(groups: Sequence[Group], metric: str) -> list[Group]:
    """Groups with a value for ``metric``, best (highest mean) first; groups without one go last."""
    return sorted(groups, key=lambda g: (g.mean(metric) is None, -(g.mean(metric) or 0.0), -(g.mean(TIE_BREAK) or 0.0)))


def selection_metric(runs: Sequence[Run], wanted: str) -> str:
    """``wanted`` if some completed run has it, else the final test accuracy (older results lack best-val)."""
    return wanted if any(run.metric(wanted) is not None for run in runs) else result_keys.STUDENT_TEST_ACC
