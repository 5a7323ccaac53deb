"""Partial updates as typed commands: a field the request body did not name is `UNSET`, which is
not `None` (None clears a nullable column; UNSET leaves it alone)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final, Self


class Unset(enum.Enum):
    """The type of `UNSET` (a one-member enum, so `x is not UNSET` narrows for mypy)."""

    token = 0


UNSET: Final = Unset.token


def named_in(body: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """Of `names`, the ones a validated `body` has, with their values: a command's keyword
    arguments (the others keep the command's defaults). Reads `body`, never changes it."""
    return {name: body[name] for name in names if name in body}


def given(command: object, names: Iterable[str]) -> dict[str, object]:
    """Of `names`, the command's fields that are set: the column changes a repository writes."""
    values = {name: getattr(command, name) for name in names}
    return {name: value for name, value in values.items() if value is not UNSET}


class ColumnPatch:
    """Mixin of a PATCH command (a dataclass) whose fields are exactly the `columns` it may set."""

    columns: ClassVar[tuple[str, ...]]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Self:
        """From a validated body: the columns it names, the others UNSET."""
        return cls(**named_in(body, cls.columns))

    def changes(self) -> dict[str, object]:
        """The columns to write."""
        return given(self, self.columns)
