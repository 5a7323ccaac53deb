"""The block JSON Schema the server validates with is BlockNote's own: regenerated from the pinned
@blocknote/core (tests/js/blocknote_schema.mjs) it must equal the checked-in file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from services.block_schema import block_errors, block_schema, block_types, prop_defaults
from tests.yjs_client import ensure_node_modules

JS_DIR = Path(__file__).parent / "js"


def test_checked_in_schema_matches_the_package():
    ensure_node_modules()
    generated = subprocess.run(
        ["node", "blocknote_schema.mjs"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(generated.stdout) == block_schema(), (
        "regenerate: cd tests/js && node blocknote_schema.mjs > ../../services/blocknote_schema.json"
    )


def test_schema_knows_blocknotes_default_types_and_props():
    assert {"paragraph", "heading", "checkListItem", "table", "image", "codeBlock"} <= set(
        block_types()
    )
    assert prop_defaults("heading")["level"] == 1
    assert prop_defaults("checkListItem")["checked"] is False


def test_block_errors_name_the_field():
    assert block_errors({"type": "heading", "props": {"level": 2}, "content": "ok"}) == {}
    assert "props.level" in block_errors({"type": "heading", "props": {"level": 7}})
    assert "props.checked" in block_errors({"type": "checkListItem", "props": {"checked": "yes"}})
    assert "content" in block_errors({"type": "paragraph", "content": [{"type": "text"}]})
    assert "type" in block_errors({"type": "unknownType"})
    assert "content" in block_errors({"type": "divider", "content": "x"})
