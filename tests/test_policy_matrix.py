"""The capability matrix: every workspace role (+ outsider) × every action × override variants.

The expectations are written out below as tables (they are the README's matrix in test form), not
recomputed with the policy's own functions. Three layers are checked against the same tables:
the pure decision, the real Postgres-backed `load_access` (cold and cached) together with the
workspace listings' SQL filter, and a representative set of HTTP endpoints.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest

from core.errors import Forbidden, NotFound
from services import policy, visibility
from services.policy import Access, AccessFacts, Action, Resource, ResourceRole, WorkspaceRole
from tests.ws_helpers import (
    fast_user,
    grant,
    insert_board,
    insert_document,
    invite,
    workspace_with,
    ws_path,
)

SUBJECTS = ("owner", "admin", "member", "guest", "outsider")

# What each effective resource role may do (the README's third table).
BOARD_ACTIONS = {
    None: set(),
    "viewer": {"board:view"},
    "commenter": {"board:view", "board:comment"},
    "editor": {"board:view", "board:comment", "board:edit"},
    "manager": {"board:view", "board:comment", "board:edit", "board:manage"},
}
DOCUMENT_ACTIONS = {
    None: set(),
    "viewer": {"document:view"},
    "commenter": {"document:view", "document:comment"},
    "editor": {"document:view", "document:comment", "document:edit"},
    "manager": {
        "document:view",
        "document:comment",
        "document:edit",
        "document:manage",
        "document:share",
    },
}
WORKSPACE_ACTIONS = {
    "owner": {
        "workspace:view",
        "workspace:update",
        "workspace:delete",
        "workspace:manage_members",
        "workspace:invite",
        "workspace:create_content",
        "workspace:transfer_ownership",
    },
    "admin": {
        "workspace:view",
        "workspace:update",
        "workspace:manage_members",
        "workspace:invite",
        "workspace:create_content",
    },
    "member": {"workspace:view", "workspace:invite", "workspace:create_content"},
    "guest": {"workspace:view"},
    "outsider": set(),
}

# Effective role per scenario and subject. Scenario names:
#   [private-]board[+GRANT]                          a board, the subject's grant on it
#   [private-]doc[+GRANT][@[private-]board[GRANT]]   a document (optionally on a board, with the
#                                                    subject's board grant in brackets)
# Every grant is given to every subject, owners, admins and outsiders included.
EXPECTED = """
scenario                              owner    admin    member     guest      outsider
board                                 manager  manager  editor     -          -
board+viewer                          manager  manager  viewer     viewer     -
board+commenter                       manager  manager  commenter  commenter  -
board+editor                          manager  manager  editor     editor     -
board+manager                         manager  manager  manager    manager    -
private-board                         manager  manager  -          -          -
private-board+viewer                  manager  manager  viewer     viewer     -
private-board+commenter               manager  manager  commenter  commenter  -
private-board+editor                  manager  manager  editor     editor     -
private-board+manager                 manager  manager  manager    manager    -
doc                                   manager  manager  editor     -          -
doc+viewer                            manager  manager  viewer     viewer     -
doc+commenter                         manager  manager  commenter  commenter  -
doc+editor                            manager  manager  editor     editor     -
doc+manager                           manager  manager  manager    manager    -
private-doc                           manager  manager  -          -          -
private-doc+viewer                    manager  manager  viewer     viewer     -
private-doc+commenter                 manager  manager  commenter  commenter  -
private-doc+editor                    manager  manager  editor     editor     -
private-doc+manager                   manager  manager  manager    manager    -
doc@board                             manager  manager  editor     -          -
doc@board[viewer]                     manager  manager  viewer     viewer     -
doc@board[manager]                    manager  manager  manager    manager    -
doc@private-board                     manager  manager  -          -          -
doc@private-board[commenter]          manager  manager  commenter  commenter  -
doc+viewer@private-board[editor]      manager  manager  viewer     viewer     -
doc+manager@board                     manager  manager  manager    manager    -
doc+viewer@private-board              manager  manager  viewer     viewer     -
private-doc@board                     manager  manager  -          -          -
private-doc@board[editor]             manager  manager  -          -          -
private-doc+commenter@board[manager]  manager  manager  commenter  commenter  -
"""
_SCENARIO = re.compile(
    r"^(?P<private>private-)?(?P<kind>board|doc)(?:\+(?P<grant>\w+))?"
    r"(?:@(?P<board_private>private-)?board(?:\[(?P<board_grant>\w+)\])?)?$"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "board" | "document"
    private: bool
    grant: str | None
    on_board: bool = False
    board_private: bool = False
    board_grant: str | None = None

    @classmethod
    def parse(cls, name: str) -> Scenario:
        m = _SCENARIO.match(name)
        assert m, name
        return cls(
            name=name,
            kind="board" if m["kind"] == "board" else "document",
            private=bool(m["private"]),
            grant=m["grant"],
            on_board="@" in name,
            board_private=bool(m["board_private"]),
            board_grant=m["board_grant"],
        )


def _table() -> dict[str, dict[str, str | None]]:
    lines = [line.split() for line in EXPECTED.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    assert tuple(header) == SUBJECTS
    return {
        row[0]: {
            subject: None if cell == "-" else cell
            for subject, cell in zip(header, row[1:], strict=True)
        }
        for row in rows
    }


TABLE = _table()
SCENARIOS = [Scenario.parse(name) for name in TABLE]
ACTIONS_OF_KIND = {
    "board": [a for a in Action if a.kind == "board"],
    "document": [a for a in Action if a.kind == "document"],
}


def expected_actions(kind: str, role: str | None) -> set[str]:
    return (BOARD_ACTIONS if kind == "board" else DOCUMENT_ACTIONS)[role]


def test_table_covers_every_action_and_role() -> None:
    """A new Action or role without a row here fails loudly instead of going untested."""
    covered = set().union(*WORKSPACE_ACTIONS.values(), *BOARD_ACTIONS.values())
    covered |= set().union(*DOCUMENT_ACTIONS.values())
    assert covered == {a.value for a in Action}
    assert set(SUBJECTS) - {"outsider"} == {r.label for r in WorkspaceRole}
    assert set(BOARD_ACTIONS) - {None} == {r.label for r in ResourceRole}


# --- the pure decision ----------------------------------------------------------------------------


def _role(subject: str) -> WorkspaceRole | None:
    return None if subject == "outsider" else WorkspaceRole[subject.upper()]


def _pure_facts(scenario: Scenario, subject: str) -> AccessFacts:
    role = _role(subject)
    inherited = None
    if scenario.on_board:
        board_name = ("private-" if scenario.board_private else "") + "board"
        board_name += f"+{scenario.board_grant}" if scenario.board_grant else ""
        inherited = ResourceRole.parse(TABLE[board_name][subject])
    return AccessFacts(
        workspace_id="w",
        workspace_role=role,
        is_private=scenario.private,
        grant=ResourceRole.parse(scenario.grant),
        inherited=inherited,
        inherits=scenario.on_board and not scenario.private,
    )


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("action", [a for a in Action if a.kind == "workspace"], ids=str)
def test_pure_workspace_decision(subject: str, action: Action) -> None:
    access = policy.decide(AccessFacts(workspace_id="w", workspace_role=_role(subject)))
    assert access.allows(action) is (action.value in WORKSPACE_ACTIONS[subject])


RESOURCE_CASES = [
    pytest.param(scenario, subject, action, id=f"{scenario.name}-{subject}-{action.value}")
    for scenario in SCENARIOS
    for subject in SUBJECTS
    for action in ACTIONS_OF_KIND[scenario.kind]
]


@pytest.mark.parametrize("scenario,subject,action", RESOURCE_CASES)
def test_pure_resource_decision(scenario: Scenario, subject: str, action: Action) -> None:
    access = policy.decide(_pure_facts(scenario, subject))
    expected = action.value in expected_actions(scenario.kind, TABLE[scenario.name][subject])
    assert access.allows(action) is expected


# --- Postgres-backed decisions, the cache, and the listing filter agree with the table -----------


async def _setup(api, ctx, scenario: Scenario):  # type: ignore[no-untyped-def]
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    users["outsider"] = await fast_user(ctx, "outsider")
    ws = workspace["id"]
    board_id = None
    if scenario.kind == "board" or scenario.on_board:
        private = scenario.private if scenario.kind == "board" else scenario.board_private
        board_id = await insert_board(ctx, ws, private=private)
    resource_id = board_id
    if scenario.kind == "document":
        resource_id = await insert_document(
            ctx, ws, board_id=board_id if scenario.on_board else None, private=scenario.private
        )
    for user in users.values():
        if scenario.grant:
            await grant(ctx, ws, scenario.kind, resource_id, user.id, scenario.grant)
        if scenario.board_grant:
            await grant(ctx, ws, "board", board_id, user.id, scenario.board_grant)
    return ws, users, Resource(scenario.kind, resource_id)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_loaded_decisions_and_listings_match_the_table(api, ctx, scenario: Scenario):
    ws, users, resource = await _setup(api, ctx, scenario)
    lister = visibility.list_boards if scenario.kind == "board" else visibility.list_documents
    for subject, user in users.items():
        expected_role = TABLE[scenario.name][subject]
        expected = expected_actions(scenario.kind, expected_role)
        # Cold (learns the workspace mapping), cold again (cached now), then from the cache.
        decisions: list[Access | None] = [
            await policy.load_access(ctx, user.id, resource) for _ in range(3)
        ]
        for access in decisions:
            assert access is not None
            allowed = {a.value for a in ACTIONS_OF_KIND[scenario.kind] if access.allows(a)}
            assert allowed == expected, (subject, allowed)
        if subject == "outsider":
            with pytest.raises(NotFound):
                await lister(ctx, user.id, ws, 100, 0)
            continue
        listed = {str(r.id): r.my_role for r in await lister(ctx, user.id, ws, 100, 0)}
        assert listed == ({resource.id: expected_role} if expected_role else {}), subject


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_workspace_actions_from_postgres(api, ctx, subject: str) -> None:
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    users["outsider"] = await fast_user(ctx, "outsider")
    access = await policy.load_access(ctx, users[subject].id, Resource.workspace(workspace["id"]))
    assert access is not None
    allowed = {a.value for a in Action if a.kind == "workspace" and access.allows(a)}
    assert allowed == WORKSPACE_ACTIONS[subject]


async def test_require_is_404_for_outsiders_and_403_for_members(api, ctx) -> None:
    """Guest asks for a private board: 403 (a member without the right); outsider: 404."""
    workspace, users = await workspace_with(api, ctx, "guest")
    outsider = await fast_user(ctx, "outsider")
    board = Resource.board(await insert_board(ctx, workspace["id"], private=True))
    with pytest.raises(Forbidden):
        await policy.require(ctx, users["guest"].id, Action.BOARD_VIEW, board)
    with pytest.raises(NotFound):
        await policy.require(ctx, outsider.id, Action.BOARD_VIEW, board)
    with pytest.raises(NotFound):
        await policy.require(ctx, users["owner"].id, Action.BOARD_VIEW, Resource.board(_uuid()))
    assert (await policy.require(ctx, users["owner"].id, Action.BOARD_MANAGE, board)).allows(
        Action.BOARD_MANAGE
    )


def _uuid() -> str:
    return str(uuid.uuid4())


# --- representative HTTP endpoints ----------------------------------------------------------------

# (method, path suffix, body, expected status for owner, admin, member, guest, outsider)
HTTP_MATRIX = [
    ("GET", "", None, (200, 200, 200, 200, 404)),
    ("GET", "members/", None, (200, 200, 200, 200, 404)),
    ("GET", "boards/", None, (200, 200, 200, 200, 404)),
    ("GET", "documents/", None, (200, 200, 200, 200, 404)),
    ("GET", "invitations/", None, (200, 200, 200, 403, 404)),
    ("PATCH", "", {"name": "Renamed"}, (200, 200, 403, 403, 404)),
    ("PATCH", "members/{guest}/", {"role": "guest"}, (200, 200, 403, 403, 404)),
    ("POST", "transfer-ownership/", {"user_id": "{admin}"}, (None, 403, 403, 403, 404)),
    ("DELETE", "", None, (None, 403, 403, 403, 404)),
]


@pytest.mark.parametrize("method,suffix,body,statuses", HTTP_MATRIX, ids=lambda v: str(v))
async def test_http_statuses_by_role(api, ctx, method, suffix, body, statuses) -> None:
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    users["outsider"] = await fast_user(ctx, "outsider")
    ids = {role: user.id for role, user in users.items()}
    path = ws_path(workspace["id"], suffix.format(**ids))
    payload = None if body is None else {k: v.format(**ids) for k, v in body.items()}
    for subject, expected in zip(SUBJECTS, statuses, strict=True):
        if expected is None:
            continue  # the owner's success changes the workspace; covered in test_workspaces
        response = await api.request(method, path, payload, token=users[subject].access_token)
        assert response.status == expected, (subject, response.body)


@pytest.mark.parametrize("subject,status", zip(SUBJECTS, (201, 201, 201, 403, 404), strict=True))
async def test_http_invite_by_role(api, ctx, subject: str, status: int) -> None:
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    users["outsider"] = await fast_user(ctx, "outsider")
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    response = await invite(api, workspace["id"], users[subject], email, "guest")
    assert response.status == status, response.body
