"""Where a teacher's weights came from, for the results and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TeacherSource:
    """Where the teacher's weights came from, for the results and the summary."""

    kind: str  # checkpoint | cache | trained | pretrained+finetuned | ensemble, "(partial: not cached)" and the like
    path: Path
    report: dict[str, Any] = field(default_factory=dict)  # extra results (val accuracy, an ensemble's members)
    members: list[tuple[str, Path]] = field(default_factory=list)  # an ensemble's (teacher name, weights file)
