"""Import: a Markdown text as a new document (services/markdown_import.py parses it).

The new document is an ordinary BlockNote document: its log starts with one whole-state update
(`server:import`) built by `block_ops.new_document_state`, every block checked against the block
schema first, so editors open it like any other and the projection and search see it at once.
"""

from __future__ import annotations

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
    try:
        imported = parse_markdown(markdown, title_from_heading=title is None)
    except TooManyBlocks as err:
        raise ValidationFailed(str(err), fields={"_body": [str(err)]}) from err
    for index, block in enumerate(imported.blocks):
        check_block(block, f"blocks.{index}.")
    new_title = (title if title is not None else imported.title or "")[:MAX_TITLE_CHARS]
    # Nothing to write for an empty text: the document starts empty, like a created one.
    state = (
        new_document_state(imported.blocks, ctx.settings.content_fragment)
        if imported.blocks
        else EMPTY_UPDATE
    )
    return await create_with_content(
        ctx, actor_id, placement, new_title, state, kind="import", imported_from="markdown"
    )
