"""Every console script answers ``--help`` (exit 0, a usage text) without running anything."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from conftest import REPO

SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_the_documented_console_scripts_exist() -> None:
    assert {"kdlab", "kdlab-compare", "kdlab-evaluate", "kdlab-sweepfile"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_answers_help(script: str) -> None:
    """Calls the function the installed script calls (``module:function`` from pyproject.toml) with ``--help``."""
    module, function = SCRIPTS[script].split(":")
    code = f"import sys; from {module} import {function} as main; sys.argv = [{script!r}, '--help']; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout.lower()
    assert "usage" in text or "configuration groups" in text, proc.stdout[:500]
