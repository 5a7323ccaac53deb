"""Helpers shared by the document test modules: SQL-made fixtures and pycrdt 'clients'."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pycrdt import Decoder, Doc, Text, XmlElement, XmlFragment

from bus.doc_log import DocLog
from services.doc_content import load_doc, to_json
from services.doc_state import load_state
from tests.content_docs import bn_block, child_group


@dataclass
class Space:
    workspace_id: str
    owner_id: str


async def make_user_row(ctx, name: str = "u") -> str:
    return str(
        await ctx.db.fetchval(
            "INSERT INTO users (email, password_hash, display_name) VALUES ($1, 'x', $2)"
            " RETURNING id",
            f"{name}-{uuid.uuid4().hex}@example.com",
            name,
        )
    )


async def make_space(ctx, owner_id: str | None = None) -> Space:
    owner = owner_id or await make_user_row(ctx, "owner")
    ws = await ctx.db.fetchval(
        "INSERT INTO workspaces (name, slug, created_by) VALUES ('W', $1, $2) RETURNING id",
        f"ws-{uuid.uuid4().hex}",
        owner,
    )
    await ctx.db.execute(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'owner')",
        ws,
        owner,
    )
    return Space(str(ws), owner)


async def make_doc_row(ctx, space: Space | None = None, title: str = "D") -> str:
    space = space or await make_space(ctx)
    return str(
        await ctx.db.fetchval(
            "INSERT INTO documents (workspace_id, title, created_by) VALUES ($1, $2, $3)"
            " RETURNING id",
            space.workspace_id,
            title,
            space.owner_id,
        )
    )


# --- through the API (workspace endpoints) plus SQL for what has no endpoint yet ------------

DOCS = "/api/v1/documents/"


async def make_workspace(api, user) -> str:
    created = await api.post(
        "/api/v1/workspaces/", {"name": f"W {uuid.uuid4().hex[:6]}"}, token=user.access_token
    )
    assert created.status == 201, created.body
    return created.body["id"]


async def join(ctx, workspace_id: str, user, role: str) -> None:
    await ctx.db.execute(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3)",
        workspace_id,
        user.id,
        role,
    )


async def grant(ctx, doc_id: str, user, role: str) -> None:
    await ctx.db.execute(
        "INSERT INTO document_grants (document_id, user_id, role) VALUES ($1, $2, $3)",
        doc_id,
        user.id,
        role,
    )


async def make_board(ctx, workspace_id: str, *, private: bool = False) -> str:
    return str(
        await ctx.db.fetchval(
            "INSERT INTO boards (workspace_id, name, is_private) VALUES ($1, 'B', $2) RETURNING id",
            workspace_id,
            private,
        )
    )


async def create(api, user, workspace_id: str, **fields) -> dict:
    response = await api.post(
        DOCS, {"workspace_id": workspace_id, **fields}, token=user.access_token
    )
    assert response.status == 201, response.body
    return response.body


class Writer:
    """A pycrdt doc acting as an editor: each call publishes its delta through DocLog."""

    def __init__(self, doc_log: DocLog, doc_id: str, doc: Doc | None = None) -> None:
        self.doc_log = doc_log
        self.doc_id = doc_id
        self.doc = doc or Doc()
        self.count = 0

    async def publish(self, update: bytes) -> int:
        self.count += 1
        ack = await self.doc_log.publish(
            self.doc_id,
            update,
            msg_id=f"{self.doc_id}:{self.doc.client_id}:{self.count}",
            client=str(self.doc.client_id),
            user="test",
        )
        return ack.seq

    async def type_text(self, text: str, root: str = "text") -> int:
        before = self.doc.get_state()
        target = self.doc.get(root, type=Text)
        target.insert(len(str(target).encode()), text)
        return await self.publish(self.doc.get_update(before))

    async def add_block(
        self,
        block_id: str,
        text: str,
        block_type: str = "paragraph",
        *,
        parent: str | None = None,
        props: dict | None = None,
    ) -> int:
        """Append a BlockNote block (as y-prosemirror writes it) at the top level or as the last
        child of `parent`."""
        before = self.doc.get_state()
        with self.doc.transaction():
            group = self.block_group() if parent is None else child_group(self.container(parent))
            bn_block(group, block_id, [(text, None)], kind=block_type, props=props)
        return await self.publish(self.doc.get_update(before))

    def block_group(self) -> XmlElement:
        fragment = self.doc.get("prosemirror", type=XmlFragment)
        if not len(fragment.children):
            fragment.children.append(XmlElement("blockGroup"))
        return fragment.children[0]

    def container(self, block_id: str) -> XmlElement:
        stack = [self.block_group()]
        while stack:
            for node in stack.pop().children:
                if node.attributes.get("id") == block_id:
                    return node
                stack.extend(c for c in node.children if c.tag == "blockGroup")
        raise KeyError(block_id)


def root_text(content: dict, name: str = "text") -> str:
    """The value of a Text root in a `content` JSON ("" when absent)."""
    return content["roots"].get(name, {}).get("value", "")


def block_texts(content: dict) -> dict[str, str]:
    """block id → plain text, over the whole tree."""
    found: dict[str, str] = {}
    stack = list(content["blocks"])
    while stack:
        block = stack.pop()
        found[block["id"]] = block["text"]
        stack.extend(block["children"])
    return found


async def fresh_content(ctx, doc_log: DocLog, doc_id: str) -> dict:
    """What a fresh joiner (no local state) sees: Postgres snapshot + the log after it."""
    return to_json((await load_state(ctx.db, doc_log, doc_id)).update)


def content_of(doc: Doc) -> dict:
    return to_json(doc.get_update())


def state_vector_of(update: bytes) -> dict[int, int]:
    """client id → clock of the integrated state (order-independent, unlike the encoding)."""
    decoder = Decoder(load_doc(update).get_state())
    return {
        decoder.read_var_uint(): decoder.read_var_uint() for _ in range(decoder.read_var_uint())
    }


def same_state(a: bytes, b: bytes) -> bool:
    """Equal content and equal state vectors (the oracle of RELIABILITY.md)."""
    return to_json(a) == to_json(b) and state_vector_of(a) == state_vector_of(b)
