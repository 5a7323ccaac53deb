"""Import: a Markdown text as a new document (services/markdown_import.py parses it).

The new document is an ordinary BlockNote document: its log starts with one whole-state update
(`server:import`) built by `block_ops.new_document_state`, every block checked against the block
schema first, so editors open it like any other and the projection and search see it at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from core.errors import ValidationFailed
from core.yjs import EMPTY_UPDATE
from services.block_ops import new_document_state
from services.blocks import check_block
from services.document_entities import Document
from services.documents import (
    MAX_TITLE_CHARS,
    Placement,
    check_placement,
    create_with_content,
)
from services.markdown_import import TooManyBlocks, parse_markdown

if TYPE_CHECKING:
    from services.deps import Deps

IMPORT_FORMATS = ("markdown",)


async def import_markdown(
    ctx: Deps, actor_id: str, placement: Placement, markdown: str, title: str | None
) -> Document:
    """Without `title`, a leading `# heading` is the title (as the export writes it)."""
    await check_placement(ctx, actor_id, placement)
    settings = ctx.settings
    # Parsing, checking and building take seconds for a large body (a megabyte of Markdown is
    # ~10,000 blocks): in a worker thread, so the node's sockets and requests go on meanwhile.
    new_title, state = await asyncio.get_running_loop().run_in_executor(
        None, _build, markdown, title, settings.content_fragment, settings.max_frame_bytes
    )
    return await create_with_content(
        ctx, actor_id, placement, new_title, state, kind="import", imported_from="markdown"
    )


def _build(markdown: str, title: str | None, fragment: str, max_bytes: int) -> tuple[str, bytes]:
    """The new document's title and first log update; a 400 for what cannot be one."""
    try:
        imported = parse_markdown(markdown, title_from_heading=title is None)
    except TooManyBlocks as err:
        raise ValidationFailed(str(err), fields={"_body": [str(err)]}) from err
    for index, block in enumerate(imported.blocks):
        check_block(block, f"blocks.{index}.")
    new_title = (title if title is not None else imported.title or "")[:MAX_TITLE_CHARS]
    # Nothing to write for an empty text: the document starts empty, like a created one.
    state = new_document_state(imported.blocks, fragment) if imported.blocks else EMPTY_UPDATE
    # The whole document is one log entry, which must fit in one message: refused here with
    # the reason rather than by NATS after the document row exists.
    if len(state) > max_bytes:
        message = (
            f"the imported document would be {len(state)} bytes, over the {max_bytes} bytes "
            "a document's first update may hold; split the text into several documents"
        )
        raise ValidationFailed(message, fields={"_body": [message]})
    return new_title, state
