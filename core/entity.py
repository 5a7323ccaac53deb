"""Entities built from repository rows: a service's frozen dataclass takes exactly its fields
from a row (a `dict` of columns; a row may carry more, which the entity leaves out)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Self


class FromRow:
    """Mixin of entity dataclasses: `Entity.from_row(row)`."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        # Every subclass is a dataclass; mypy cannot know that of this mixin's `cls`.
        names = (f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        return cls(**{name: row[name] for name in names})
