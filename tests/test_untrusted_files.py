"""Files a run directory holds are data, never code: kdlab-evaluate builds only kdlab's own targets, and every
``torch.load`` in the package is weights-only."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from conftest import REPO
from omegaconf import OmegaConf

from kdlab.errors import ConfigError
from kdlab.report.evaluate import evaluate_run, is_allowed_target, main

PACKAGE = REPO / "kdlab"


def _fake_run(run_dir: Path, config: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps({"status": "completed", "config": {"seed": 0, **config}}))
    (run_dir / "student.pt").write_bytes(b"")
    return run_dir


@pytest.mark.parametrize(
    ("config", "key", "target"),
    [
        ({"data": {"_target_": "os.system", "command": "touch {marker}"}}, "data._target_", "os.system"),
        (
            {"kd": {"terms": {"evil": {"_target_": "builtins.exec", "source": "open('{marker}', 'w')"}}}},
            "kd.terms.evil._target_",
            "builtins.exec",
        ),
        (  # inside torch, but a loader of code: a local hubconf.py
            {"teacher": {"model": {"_target_": "torch.hub.load", "repo_or_dir": "{marker}", "model": "m"}}},
            "teacher.model._target_",
            "torch.hub.load",
        ),
    ],
    ids=["os.system", "nested-builtins.exec", "torch.hub.load"],
)
def test_evaluate_refuses_a_target_kdlab_does_not_build(
    config: dict, key: str, target: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    marker = tmp_path / "it-ran"
    run_dir = _fake_run(tmp_path / "run", json.loads(json.dumps(config).replace("{marker}", str(marker))))
    with pytest.raises(ConfigError, match=rf"results.json sets {key}='{target}', which kdlab-evaluate does not build"):
        evaluate_run(run_dir)
    assert main([str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"kdlab-evaluate: error: results.json sets {key}='{target}'")
    assert not marker.exists()


def test_every_target_in_kdlabs_config_groups_is_allowed() -> None:
    targets = set()
    for path in (REPO / "conf").rglob("*.yaml"):
        node = OmegaConf.to_container(OmegaConf.load(path))
        if isinstance(node, dict):
            node.pop("hydra", None)  # Hydra's own settings and callbacks: never part of a run's stored config
        targets |= set(_targets(node))
    assert {"timm.create_model", "torch.optim.SGD", "kdlab.terms.SoftTargets"} <= targets  # the scan found them
    assert [t for t in targets if not is_allowed_target(t)] == []
    assert not is_allowed_target("torch.testing._internal.common_utils.shell")


def _targets(node):
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield node["_target_"]
        for child in node.values():
            yield from _targets(child)
    elif isinstance(node, list):
        for child in node:
            yield from _targets(child)


def unsafe_torch_loads(source: str, filename: str = "<source>") -> list[str]:
    """``file:line`` of each ``torch.load(...)`` (or ``torch.serialization.load``) without ``weights_only=True``,
    and of each ``from torch import load`` (which would hide the call from this scan)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            found += [f"{filename}:{node.lineno}" for alias in node.names if alias.name == "load"]
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("torch.load", "torch.serialization.load"):
            safe = any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
            found += [] if safe else [f"{filename}:{node.lineno}"]
    return found


def test_the_scan_tells_safe_from_unsafe_loads() -> None:
    assert unsafe_torch_loads("torch.load(p, map_location='cpu', weights_only=True)") == []
    assert unsafe_torch_loads("torch.load(p)") == ["<source>:1"]
    assert unsafe_torch_loads("x = 1\ntorch.load(p, weights_only=False)") == ["<source>:2"]
    assert unsafe_torch_loads("torch.load(p, weights_only=flag)") == ["<source>:1"]
    assert unsafe_torch_loads("from torch import load") == ["<source>:1"]


def test_every_torch_load_in_the_package_is_weights_only() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 50 and any("torch.load(" in p.read_text() for p in sources)  # scanning the real package
    unsafe = [hit for p in sources for hit in unsafe_torch_loads(p.read_text(), str(p.relative_to(REPO)))]
    assert unsafe == []
