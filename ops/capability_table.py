"""Print the capability matrix (markdown) from the policy itself: `python -m ops.capability_table`.

docs/workspaces.md embeds this output between `capability-table` markers, and a test fails when
the two drift apart, so the documented matrix is always the enforced one. `--write FILE` replaces
the table between the markers in FILE.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.policy import (
    CAPABILITIES,
    AccessFacts,
    Action,
    ResourceRole,
    WorkspaceRole,
    effective_resource_role,
)

ROLES = sorted(WorkspaceRole, reverse=True)
YES, NO = "✓", "–"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]
    return "\n".join(lines)


def workspace_table() -> str:
    rows = []
    for action in Action:
        needed = CAPABILITIES[action]
        if not isinstance(needed, WorkspaceRole):
            continue
        marks = [YES if role >= needed else NO for role in ROLES]
        rows.append([f"`{action.value}`", *marks, "404"])
    header = ["workspace action", *(r.label.title() for r in ROLES), "non-member"]
    return _table(header, rows)


# (situation, facts minus the workspace role) — the overrides the matrix test also covers.
SITUATIONS: list[tuple[str, dict]] = [
    ("not private, no grant", {}),
    ("private, no grant", {"is_private": True}),
    *[
        (f"grant `{grant.label}` (private or not)", {"grant": grant, "is_private": True})
        for grant in ResourceRole
    ],
    *[
        (
            f"document on a board, no own grant, caller is `{board.label}` on the board",
            {"inherits": True, "inherited": board},
        )
        for board in (ResourceRole.VIEWER, ResourceRole.MANAGER)
    ],
    (
        "document on a board, no own grant, caller cannot see the board",
        {"inherits": True, "inherited": None},
    ),
    ("private document on a board, no own grant", {"is_private": True}),
]


def resource_role_table() -> str:
    rows = []
    for situation, facts in SITUATIONS:
        cells = []
        for role in ROLES:
            effective = effective_resource_role(AccessFacts("w", role, **facts))
            cells.append(effective.label if effective else NO)
        rows.append([situation, *cells])
    header = ["board / document", *(r.label.title() for r in ROLES)]
    return _table(header, rows)


def action_table() -> str:
    rows = []
    for action in Action:
        needed = CAPABILITIES[action]
        if not isinstance(needed, ResourceRole):
            continue
        marks = [YES if role >= needed else NO for role in ResourceRole]
        rows.append([f"`{action.value}`", *marks])
    header = ["board / document action", *(r.label for r in ResourceRole)]
    return _table(header, rows)


def render() -> str:
    return "\n\n".join(
        [
            "Workspace actions by workspace role:",
            workspace_table(),
            "Effective role on a board or document (non-members: nothing, 404):",
            resource_role_table(),
            "What each effective role allows:",
            action_table(),
        ]
    )


START, END = "<!-- capability-table:start -->", "<!-- capability-table:end -->"


def write_into(path: Path) -> None:
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{render()}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="markdown file with capability-table markers")
    args = parser.parse_args()
    if args.write:
        write_into(args.write)
    else:
        print(render())


if __name__ == "__main__":
    main()
