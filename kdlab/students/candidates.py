"""Which timm models to measure: an explicit list, or every model whose name matches a pattern."""

from __future__ import annotations

from collections.abc import Sequence

import timm

from kdlab.errors import ConfigError


def candidate_names(students: Sequence[str] | None, pattern: str | None, max_candidates: int) -> list[str]:
    """``pattern`` (``timm.list_models`` syntax, e.g. ``mobilenetv3_small*``) when given, else ``students``.

    Refused before any timing: an unknown name, an empty selection, or more than ``max_candidates`` models.
    """
    if pattern:
        names = timm.list_models(pattern)
        if not names:
            raise ConfigError(f"pattern={pattern!r} matches no timm model (try e.g. 'mobilenetv3_small*')")
    else:
        names = list(dict.fromkeys(students or []))
        if not names:
            raise ConfigError("students is empty: give students=[name,...] or pattern='name*'")
        unknown = [name for name in names if not timm.is_model(name)]
        if unknown:
            raise ConfigError(f"students: {', '.join(unknown)} is not a timm model name (see timm.list_models())")
    if len(names) > max_candidates:
        raise ConfigError(
            f"{len(names)} candidates ({', '.join(names[:5])}, …) exceed max_candidates={max_candidates}: "
            "narrow the pattern or raise max_candidates"
        )
    return names
