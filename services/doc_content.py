"""The content model inside a document's CRDT doc, and server-side writes as diffs.

Pure functions over Yjs v1 updates (no I/O), so REST handlers, the snapshot job and tests share them.

Layout of the Yjs doc (DESIGN.md §5: block structure lives *inside* the CRDT doc, so concurrent
block edits converge like text does):

* root Map ``"blocks"``: block id → Map ``{"type": str, "props": Map, "text": Text,
  "children": Array[str]}``
* root Array ``"root"``: the top-level block ids, in order
* root Map ``"meta"``: document-level values written by editors (free-form)
* root ``"text"`` (Text), ``"map"`` (Map), ``"array"`` (Array): the generic roots a plain Yjs
  client (y-websocket examples, the JS test harness) uses; shown by GET as well.

A block is part of the content when it is reachable from ``"root"`` through ``children``; the first
reference wins (concurrent moves can reference one block twice, or make a cycle), unreachable
entries of ``"blocks"`` are garbage a client may collect. Roots with other names are kept in the
doc untouched, but not shown (their type cannot be known from the update alone).

Server-side writes (restores, duplicates of content into a live doc) are never rebuilt from JSON
into a fresh doc: that would duplicate content when clients merge it with their history (DESIGN.md
§7). They are diffs: the current state is loaded into a doc with a fresh random client id, its
shared types are edited in place to match the target, and only the resulting delta is returned.
"""

from __future__ import annotations

import difflib
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pycrdt
from pycrdt import Array, Doc, Map, Text

from models.repo.doc_content import BlockRow

BLOCKS_ROOT = "blocks"
ORDER_ROOT = "root"
META_ROOT = "meta"
GENERIC_TEXT_ROOT = "text"
GENERIC_MAP_ROOT = "map"
GENERIC_ARRAY_ROOT = "array"

# Every root this module reads or restores, with the shared type it is read as.
ROOT_TYPES: dict[str, type[Text] | type[Map] | type[Array]] = {
    BLOCKS_ROOT: Map,
    ORDER_ROOT: Array,
    META_ROOT: Map,
    GENERIC_TEXT_ROOT: Text,
    GENERIC_MAP_ROOT: Map,
    GENERIC_ARRAY_ROOT: Array,
}
EMPTY_UPDATES = (b"", b"\x00\x00")
# A text diff compares the changed middle character by character; beyond this many cells
# (len(a) × len(b)) it replaces the middle wholesale instead: still a correct diff on the same
# history, just a coarser one, and a restore request never burns seconds of CPU on difflib.
MAX_TEXT_DIFF_CELLS = 4_000_000
# Yjs client ids are uint32 on the JS side; 0 is avoided as some tools treat it as "unset".
MAX_CLIENT_ID = 2**32 - 1


class ContentError(ValueError):
    """The bytes are not a Yjs v1 update this module can read."""


# --- reading -------------------------------------------------------------------------------


def load_doc(update: bytes, *, client_id: int | None = None) -> Doc:
    """A doc holding `update`; malformed bytes raise `ContentError` (pyo3 panics included)."""
    doc: Doc = Doc(client_id=client_id) if client_id is not None else Doc()
    if update in EMPTY_UPDATES:
        return doc
    try:
        doc.apply_update(update)
    except BaseException as err:  # pycrdt raises ValueError, a Rust panic is a BaseException
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        raise ContentError(f"not a valid Yjs update: {err}") from err
    return doc


def plain(value: Any) -> Any:
    """A shared value as JSON: Text → str, Map → dict, Array → list, integral floats → int
    (Yjs numbers are doubles; `1` written by JS reads back as `1.0`)."""
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, Map):
        return {key: plain(value[key]) for key in sorted(value.keys())}
    if isinstance(value, Array):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # XML types, sub-documents: shown as text, never fail a GET


def _roots(doc: Doc) -> dict[str, Any]:
    return {name: doc.get(name, type=kind) for name, kind in ROOT_TYPES.items()}


def _block_fields(entry: Any) -> tuple[str, dict[str, Any], str, list[str]]:
    """(type, props, text, child ids) of a block entry, tolerant of clients that deviate."""
    if not isinstance(entry, Map):
        return "unknown", {}, "", []
    kind = entry.get("type")
    props = entry.get("props")
    text = entry.get("text")
    children = entry.get("children")
    return (
        kind if isinstance(kind, str) else "unknown",
        plain(props) if isinstance(props, Map | dict) else {},
        plain(text) if isinstance(text, Text | str) else "",
        [c for c in children if isinstance(c, str)] if isinstance(children, Array) else [],
    )


def _walk(doc: Doc) -> Iterator[tuple[str, str | None, int, list[str], Any]]:
    """Depth-first over reachable blocks: (id, parent id, position, path, entry).

    Iterative (a hostile doc may nest deeply) and visited-guarded (first reference wins)."""
    blocks = doc.get(BLOCKS_ROOT, type=Map)
    top = [i for i in doc.get(ORDER_ROOT, type=Array) if isinstance(i, str)]
    seen: set[str] = set()
    stack: list[tuple[str, str | None, int, list[str]]] = [
        (block_id, None, pos, []) for pos, block_id in reversed(list(enumerate(top)))
    ]
    while stack:
        block_id, parent, position, ancestors = stack.pop()
        if block_id in seen or block_id not in blocks:
            continue
        seen.add(block_id)
        entry = blocks[block_id]
        path = [*ancestors, block_id]
        yield block_id, parent, position, path, entry
        children = _block_fields(entry)[3]
        stack.extend(
            (child, block_id, pos, path) for pos, child in reversed(list(enumerate(children)))
        )


def _content_of(doc: Doc) -> dict[str, Any]:
    nodes: dict[str, dict[str, Any]] = {}
    tree: list[dict[str, Any]] = []
    for block_id, parent, _position, _path, entry in _walk(doc):
        kind, props, text, _children = _block_fields(entry)
        node = {"id": block_id, "type": kind, "props": props, "text": text, "children": []}
        nodes[block_id] = node
        (nodes[parent]["children"] if parent is not None else tree).append(node)
    roots = _roots(doc)
    return {
        "meta": plain(roots[META_ROOT]),
        "blocks": tree,
        "text": plain(roots[GENERIC_TEXT_ROOT]),
        "map": plain(roots[GENERIC_MAP_ROOT]),
        "array": plain(roots[GENERIC_ARRAY_ROOT]),
    }


def to_json(update: bytes) -> dict[str, Any]:
    """The document's content as JSON (the `content` of GET /documents/{id})."""
    return _content_of(load_doc(update))


def project_blocks(update: bytes) -> list[BlockRow]:
    """The reachable blocks as rows of the Postgres projection, in document order."""
    rows = []
    for block_id, parent, position, path, entry in _walk(load_doc(update)):
        kind, props, text, _children = _block_fields(entry)
        rows.append(
            BlockRow(
                block_id=block_id,
                parent_id=parent,
                position=position,
                depth=len(path) - 1,
                path=path,
                type=kind,
                content={"props": props, "text": text},
            )
        )
    return rows


# --- writing diffs -------------------------------------------------------------------------


def fresh_client_id() -> int:
    return secrets.randbelow(MAX_CLIENT_ID) + 1


def make_restore_update(current_state: bytes, target_state: bytes) -> bytes:
    """A Yjs update that turns `current_state`'s content into `target_state`'s.

    Built on the current history by a doc with a fresh random client id, so a client holding the
    current state (or a newer one) applies it as ordinary edits: deleted items are deleted by id,
    new ones are inserted next to existing ones. Concurrent edits by others survive, as with any
    concurrent CRDT edit. Returns an update with no structs when nothing differs.
    """
    doc = load_doc(current_state, client_id=fresh_client_id())
    target = load_doc(target_state)
    before = doc.get_state()
    current_roots, target_roots = _roots(doc), _roots(target)
    with doc.transaction(origin="restore"):
        for name in ROOT_TYPES:
            _sync_shared(current_roots[name], target_roots[name])
    return doc.get_update(before)


def _kind(value: Any) -> type | None:
    for kind in (Text, Map, Array):
        if isinstance(value, kind):
            return kind
    return None


def _sync_shared(current: Any, target: Any) -> None:
    if isinstance(current, Text):
        _sync_text(current, target)
    elif isinstance(current, Map):
        _sync_map(current, target)
    else:
        _sync_array(current, target)


def _empty_like(target: Any) -> Any:
    kind = _kind(target)
    assert kind is not None, "only shared types have an empty counterpart"
    return kind()


def _set_entry(container: Map, key: str, current: Any, target: Any) -> None:
    """Make `container[key]` equal `target`, editing a shared value in place when kinds match."""
    kind = _kind(target)
    if kind is not None and _kind(current) is kind:
        _sync_shared(current, target)
    elif kind is not None:
        container[key] = _empty_like(target)
        _sync_shared(container[key], target)
    elif _kind(current) is not None or current != target or key not in container:
        container[key] = target


def _sync_map(current: Map, target: Map) -> None:
    wanted = set(target.keys())
    for key in [k for k in current.keys() if k not in wanted]:  # noqa: SIM118 (a Map, not a dict)
        del current[key]
    for key in sorted(wanted):
        _set_entry(current, key, current.get(key), target[key])


def _fingerprint(value: Any) -> str:
    kind = _kind(value)
    return json.dumps([kind.__name__ if kind else "value", plain(value)], sort_keys=True)


def _sync_array(current: Array, target: Array) -> None:
    cur = [_fingerprint(v) for v in current]
    tgt = [_fingerprint(v) for v in target]
    if cur == tgt:
        return
    target_items = list(target)
    opcodes = difflib.SequenceMatcher(None, cur, tgt, autojunk=False).get_opcodes()
    # Right to left: an edit never shifts the indices of the edits still to apply.
    for tag, i1, i2, j1, j2 in reversed(opcodes):
        if tag == "equal":
            continue
        if i2 > i1:
            del current[i1:i2]
        for offset, item in enumerate(target_items[j1:j2]):
            _insert_item(current, i1 + offset, item)


def _insert_item(array: Array, index: int, item: Any) -> None:
    if _kind(item) is None:
        array.insert(index, item)
        return
    array.insert(index, _empty_like(item))
    _sync_shared(array[index], item)


def _utf8_offsets(text: str) -> list[int]:
    """Byte offset of each code point (and of the end): pycrdt indexes Text in UTF-8 bytes."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + len(char.encode("utf-8")))
    return offsets


def _text_edits(old: str, new: str) -> list[tuple[int, int, str]]:
    """(start, end, replacement) in code points of `old`, left to right."""
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]:
        suffix += 1
    a, b = old[prefix : len(old) - suffix], new[prefix : len(new) - suffix]
    if len(a) * len(b) > MAX_TEXT_DIFF_CELLS:
        return [(prefix, prefix + len(a), b)]
    edits = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            edits.append((prefix + i1, prefix + i2, b[j1:j2]))
    return edits


Delta = list[tuple[Any, dict[str, Any] | None]]


def _delta(text: Text) -> Delta:
    """The text's runs, adjacent runs with equal marks joined (item boundaries are invisible)."""
    runs: Delta = []
    for chunk, attrs in text.diff():
        marks = dict(attrs) if attrs else None
        if (
            runs
            and isinstance(chunk, str)
            and isinstance(runs[-1][0], str)
            and runs[-1][1] == marks
        ):
            runs[-1] = (runs[-1][0] + chunk, marks)
        else:
            runs.append((chunk, marks))
    return runs


def _has_embeds(delta: Delta) -> bool:
    return any(not isinstance(chunk, str) for chunk, _attrs in delta)


def _sync_text(current: Text, target: Text) -> None:
    target_delta = _delta(target)
    current_delta = _delta(current)
    if current_delta == target_delta:
        return
    if _has_embeds(target_delta) or _has_embeds(current_delta):
        _rebuild_text(current, target_delta)
        return
    old = str(current)
    offsets = _utf8_offsets(old)
    for start, end, replacement in reversed(_text_edits(old, str(target))):
        if end > start:
            del current[offsets[start] : offsets[end]]
        if replacement:
            current.insert(offsets[start], replacement)
    if _delta(current) != target_delta:
        _sync_formatting(current, target_delta)


def _sync_formatting(current: Text, target_delta: Delta) -> None:
    """Same characters, different marks: set each target run's marks, clear the others."""
    present = {key for _chunk, attrs in _delta(current) for key in (attrs or {})}
    position = 0
    for chunk, attrs in target_delta:
        length = len(chunk.encode("utf-8"))
        wanted = dict(attrs or {})
        marks = {key: wanted.get(key) for key in present | set(wanted)}
        if marks:
            current.format(position, position + length, marks)
        position += length


def _rebuild_text(current: Text, target_delta: Delta) -> None:
    """Embeds have no character diff: replace the whole text (still a diff on this history)."""
    current.clear()
    position = 0
    for chunk, attrs in target_delta:
        if isinstance(chunk, str):
            current.insert(position, chunk, dict(attrs) if attrs else None)
            position += len(chunk.encode("utf-8"))
        else:
            current.insert_embed(position, chunk, dict(attrs) if attrs else None)
            position += 1


def state_vector(update: bytes) -> bytes:
    """The state vector of a stored state (kept next to snapshots for sync step 1 answers)."""
    if update in EMPTY_UPDATES:
        return b"\x00"
    try:
        return pycrdt.get_state(update)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        raise ContentError(f"not a valid Yjs update: {err}") from err
