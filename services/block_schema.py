"""BlockNote's block types as a JSON Schema, and the check REST block writes go through.

The schema file (`services/blocknote_schema.json`) is generated from the pinned `@blocknote/core`
by `tests/js/blocknote_schema.mjs` — the editor's own block, inline-content and style schemas,
with the product's mention inline content (`tests/js/product_schema.mjs`) —
never written by hand — and `tests/test_block_schema.py` fails when the package and the file
disagree. It is served at `GET /api/v1/schemas/blocks.json` so clients validate the same way.

Types: the schema and the blocks it checks are JSON (plain dicts), open on purpose: the JSON
Schema is the type.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import ValidationError

SCHEMA_FILE = "blocknote_schema.json"


@cache
def block_schema() -> dict[str, Any]:
    return json.loads(resources.files("services").joinpath(SCHEMA_FILE).read_text("utf-8"))


def block_types() -> list[str]:
    return sorted(
        name.removeprefix("block.") for name in block_schema()["$defs"] if name.startswith("block.")
    )


def content_kind(block_type: str) -> str | None:
    """`inline`, `plain`, `table` or `none` for a BlockNote type; None for a type it lacks."""
    spec = block_schema()["$defs"].get(f"block.{block_type}")
    return None if spec is None else spec["x-content"]


def prop_names(block_type: str) -> set[str]:
    spec = block_schema()["$defs"].get(f"block.{block_type}")
    return set(spec["properties"]["props"]["properties"]) if spec else set()


def prop_defaults(block_type: str) -> dict[str, Any]:
    """The props BlockNote gives a new block of this type (what its editor would write)."""
    spec = block_schema()["$defs"][f"block.{block_type}"]
    props = spec["properties"]["props"]["properties"]
    return {name: prop["default"] for name, prop in props.items() if "default" in prop}


def inline_prop_defaults(inline_type: str) -> dict[str, Any]:
    """The props a custom inline node (the mention) gets when a write leaves some out: ProseMirror
    fills every attribute with its default, so the editor always writes them all."""
    spec = block_schema()["$defs"].get(f"inline.{inline_type}")
    if spec is None:
        return {}
    props = spec["properties"]["props"]["properties"]
    return {name: prop["default"] for name, prop in props.items() if "default" in prop}


def block_errors(block: dict[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """Field path → messages for a block write (`type`, `props`, `content`); empty: valid.

    The type is checked first so an unknown type says so, instead of listing every type's
    mismatch; then the block is checked against its own type's schema only."""
    kind = block.get("type")
    if not isinstance(kind, str) or content_kind(kind) is None:
        return {f"{prefix}type": [f"unknown block type; one of: {', '.join(block_types())}"]}
    if content_kind(kind) == "none" and "content" in block:
        # jsonschema reports a `false` subschema without the property's path: said here instead.
        return {f"{prefix}content": [f"a {kind} block has no content"]}
    # Imported here: jsonschema and its dependencies are ~10 MB that only REST block writes use.
    from jsonschema import Draft202012Validator

    schema = {"$ref": f"#/$defs/block.{kind}", "$defs": block_schema()["$defs"]}
    errors: dict[str, list[str]] = {}
    for error in Draft202012Validator(schema).iter_errors(block):
        errors.setdefault(f"{prefix}{_field(error)}", []).append(error.message)
    return errors


def _field(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "block"
