"""The rich text of a comment: a small, closed JSON schema, its size limits, text and mentions.

    {"type": "doc", "content": [
        {"type": "paragraph", "content": [
            {"type": "text", "text": "Looks good, ", "marks": ["bold"]},
            {"type": "mention", "user_id": "<uuid>"},
            {"type": "link", "href": "https://example.com", "text": "the spec"}]}]}

Paragraphs of three inline node kinds — text (with optional marks), link (http, https or mailto)
and mention (a user id) — and nothing else: no HTML, no attributes a client could smuggle
scripts through, no nesting beyond doc → paragraph → inline, so the depth is fixed. Pure: the
mentioned ids are only collected here; which of them name members is the service's question.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

# A comment is a message, not a document: about two printed pages of text.
MAX_BODY_CHARS = 10_000
MAX_PARAGRAPHS = 200
MAX_INLINE_NODES = 1_000
MAX_MENTIONS = 50
MAX_URL_CHARS = 2_048
MARKS = ("bold", "italic", "strike", "code")
LINK_SCHEMES = ("http", "https", "mailto")


def _url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme.lower() not in LINK_SCHEMES or not (parts.netloc or parts.scheme == "mailto"):
        raise ValidationError(f"must be an absolute {', '.join(LINK_SCHEMES)} URL")


class TextNode(Schema):
    type = fields.String(required=True, validate=validate.Equal("text"))
    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_BODY_CHARS))
    marks = fields.List(
        fields.String(validate=validate.OneOf(MARKS)), validate=validate.Length(max=len(MARKS))
    )


class LinkNode(Schema):
    type = fields.String(required=True, validate=validate.Equal("link"))
    href = fields.String(required=True, validate=[validate.Length(max=MAX_URL_CHARS), _url])
    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_BODY_CHARS))


class MentionNode(Schema):
    type = fields.String(required=True, validate=validate.Equal("mention"))
    user_id = fields.UUID(required=True)


INLINE_SCHEMAS: dict[str, type[Schema]] = {
    "text": TextNode,
    "link": LinkNode,
    "mention": MentionNode,
}


class InlineNode(fields.Field):
    """One inline node, checked by the schema its `type` names."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("must be an object")
        schema = INLINE_SCHEMAS.get(value.get("type"))  # type: ignore[arg-type]
        if schema is None:
            raise ValidationError(f"type must be one of {', '.join(INLINE_SCHEMAS)}")
        loaded = schema().load(value)
        if "user_id" in loaded:
            loaded["user_id"] = str(loaded["user_id"])
        return loaded


class ParagraphNode(Schema):
    type = fields.String(required=True, validate=validate.Equal("paragraph"))
    content = fields.List(
        InlineNode(), load_default=list, validate=validate.Length(max=MAX_INLINE_NODES)
    )


class CommentBodySchema(Schema):
    """The body of a comment (validated on every write; the stored form is what `load` gives)."""

    type = fields.String(required=True, validate=validate.Equal("doc"))
    content = fields.List(
        fields.Nested(ParagraphNode),
        required=True,
        validate=validate.Length(min=1, max=MAX_PARAGRAPHS),
    )

    @validates_schema
    def _limits(self, body: dict[str, Any], **_: Any) -> None:
        nodes = inline_nodes(body)
        if len(nodes) > MAX_INLINE_NODES:
            raise ValidationError(f"at most {MAX_INLINE_NODES} inline nodes", "content")
        if sum(len(n.get("text", "")) for n in nodes) > MAX_BODY_CHARS:
            raise ValidationError(f"at most {MAX_BODY_CHARS} characters of text", "content")
        if len(mentioned_ids(body)) > MAX_MENTIONS:
            raise ValidationError(f"at most {MAX_MENTIONS} different users mentioned", "content")
        if not any(n["type"] == "mention" or n.get("text", "").strip() for n in nodes):
            raise ValidationError("a comment needs some text or a mention", "content")


def inline_nodes(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for para in body.get("content", []) for node in para.get("content", [])]


def mentioned_ids(body: dict[str, Any]) -> list[str]:
    """The user ids mentioned, in order of first mention, each once."""
    seen: dict[str, None] = {}
    for node in inline_nodes(body):
        if node["type"] == "mention":
            seen.setdefault(str(node["user_id"]), None)
    return list(seen)


def plain_text(body: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """The body as plain text (previews, notifications): paragraphs on their own lines, mentions
    as `@name` (`@user` when the name is not known)."""
    lines = []
    for para in body.get("content", []):
        parts = []
        for node in para.get("content", []):
            if node["type"] == "mention":
                parts.append("@" + (names or {}).get(str(node["user_id"]), "user"))
            else:
                parts.append(node["text"])
        lines.append("".join(parts))
    return "\n".join(lines)
