"""Every console script answers ``--help`` (exit 0, a usage text) without running anything."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO

SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]

# One interpreter calls each script's function (``module:function`` from pyproject.toml) with ``--help`` in turn: the
# scripts share torch's and Lightning's import (seconds each) instead of paying it once per script.
HELP_ALL = """
import contextlib, importlib, io, json, sys
answers = {}
for script, target in json.loads(sys.argv[1]).items():
    module, function = target.split(":")
    out, err = io.StringIO(), io.StringIO()
    sys.argv = [script, "--help"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = getattr(importlib.import_module(module), function)()
        except SystemExit as exit_:
            code = exit_.code
    answers[script] = {"code": code or 0, "stdout": out.getvalue(), "stderr": err.getvalue()[-2000:]}
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def help_answers() -> dict[str, dict]:
    proc = subprocess.run(
        [sys.executable, "-c", HELP_ALL, json.dumps(SCRIPTS)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_documented_console_scripts_exist() -> None:
    assert {"kdlab", "kdlab-compare", "kdlab-evaluate", "kdlab-sweepfile"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_answers_help(script: str, help_answers: dict[str, dict]) -> None:
    answer = help_answers[script]
    assert answer["code"] == 0, answer["stderr"]
    text = answer["stdout"].lower()
    assert "usage" in text or "configuration groups" in text, answer["stdout"][:500]
