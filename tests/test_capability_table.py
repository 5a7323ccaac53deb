"""The capability matrix in docs/workspaces.md is exactly what ops/capability_table.py prints."""

from __future__ import annotations

from pathlib import Path

from ops import capability_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "workspaces.md"
START, END = capability_table.START, capability_table.END


def documented_table() -> str:
    text = DOC.read_text()
    return text[text.index(START) + len(START) : text.index(END)].strip()


def test_docs_table_is_the_generated_one() -> None:
    assert documented_table() == capability_table.render().strip(), (
        "regenerate: python -m ops.capability_table --write docs/workspaces.md"
    )
