"""Server-side writes as diffs on the live history: make shared types equal a target, in place.

Never rebuild content from JSON into a fresh doc: a client merging that with its history would see
the content twice (DESIGN.md §7). Instead the current state is loaded into a doc with a **fresh
random client id**, its shared types are edited in place until they equal the target's, and only
the delta (`doc.get_update(state_vector_before)`) is published. Clients holding the current history
(or an older one) apply it as ordinary edits; concurrent edits by others survive.

Covered: Text (characters by a minimal diff — pycrdt offsets are UTF-8 bytes —, marks re-applied,
embeds rebuilt), Map (key by key), Array (by a diff of item fingerprints), and XmlFragment /
XmlElement / XmlText (children by a diff of node fingerprints; an element kept in place when its tag
and `id` attribute match, so a block's id, its history and concurrent typing inside it survive;
attributes key by key; text as Text). Used by restore (whole roots) and by block edits (one node).

Types: a delta's attributes are the Yjs formatting attributes a client wrote: open on purpose.
"""

from __future__ import annotations

import difflib
import json
import secrets
from typing import Any

from pycrdt import Array, Map, Text, XmlElement, XmlFragment, XmlText

from services.ydoc_roots import (
    EMPTY_UPDATE,
    SHARED_TYPES,
    RootKind,
    Roots,
    attribute_items,
    attributes_of,
    bind_roots,
    plain,
)

# A text diff compares the changed middle character by character; beyond this many cells
# (len(a) × len(b)) it replaces the middle wholesale instead: still a correct diff on the same
# history, just a coarser one, and a restore request never burns seconds of CPU on difflib.
MAX_TEXT_DIFF_CELLS = 4_000_000
# Yjs client ids are uint32 on the JS side; 0 is avoided as some tools treat it as "unset".
MAX_CLIENT_ID = 2**32 - 1


class RootTypeConflict(ValueError):
    """A root holds one shared type in the document and another in the target: a diff cannot
    turn one into the other (a Yjs root keeps its type for the life of the document)."""

    def __init__(self, name: str, current: RootKind, target: RootKind) -> None:
        super().__init__(
            f"root {name!r} is a {current.value} now but a {target.value} in the target"
        )
        self.name = name


def fresh_client_id() -> int:
    return secrets.randbelow(MAX_CLIENT_ID) + 1


def make_restore_update(current_state: bytes, target_state: bytes) -> bytes:
    """A Yjs update that turns `current_state`'s content into `target_state`'s, every root.

    Roots the target lacks are emptied (their type stays); roots it has are synced; a root whose
    type differs raises `RootTypeConflict` before anything is written. Returns an update with no
    structs when nothing differs.
    """
    current = bind_roots(current_state, client_id=fresh_client_id())
    target = bind_roots(target_state)
    for name, kind in target.kinds.items():
        have = current.kinds.get(name)
        if have is not None and have is not kind:
            raise RootTypeConflict(name, have, kind)
    if _same_roots(current, target):
        # Yjs writes the whole delete set into every update, so an unchanged doc with deletions
        # in its history would still produce a non-empty "diff": decide equality up front.
        return EMPTY_UPDATE
    doc = current.doc
    before = doc.get_state()
    with doc.transaction(origin="restore"):
        for name in sorted(set(current.kinds) | set(target.kinds)):
            _sync_root(current, target, name)
    return doc.get_update(before)


def _same_roots(current: Roots, target: Roots) -> bool:
    if set(current.kinds) != set(target.kinds):
        return False
    return all(
        fingerprint(current.get(name)) == fingerprint(target.get(name)) for name in target.kinds
    )


def _sync_root(current: Roots, target: Roots, name: str) -> None:
    kind = target.kinds.get(name) or current.kinds[name]
    mine = current.doc.get(name, type=SHARED_TYPES[kind])
    if name in target.kinds:
        sync_shared(mine, target.get(name))
    else:
        clear_shared(mine)


def clear_shared(shared: Any) -> None:
    """Empty a root (its type stays: a Yjs root keeps its type for the life of the document)."""
    if isinstance(shared, Map):
        for key in list(shared.keys()):
            del shared[key]
    elif isinstance(shared, XmlFragment):
        del shared.children[0 : len(shared.children)]
    elif isinstance(shared, Text):
        shared.clear()
    else:
        del shared[0 : len(shared)]


def sync_shared(current: Any, target: Any) -> None:
    """Edit `current` in place until it equals `target` (same shared type)."""
    if isinstance(current, XmlFragment | XmlElement):
        sync_xml(current, target)
    elif isinstance(current, Text | XmlText):
        sync_text(current, target)
    elif isinstance(current, Map):
        _sync_map(current, target)
    else:
        _sync_array(current, target)


# --- Map / Array ----------------------------------------------------------------------------


def _kind(value: Any) -> type | None:
    for kind in (XmlText, XmlElement, XmlFragment, Text, Map, Array):
        if isinstance(value, kind):
            return kind
    return None


def _empty_like(target: Any) -> Any:
    if isinstance(target, XmlElement):
        return XmlElement(target.tag)
    kind = _kind(target)
    assert kind is not None, "only shared types have an empty counterpart"
    return kind()


def _target_items(target: Any) -> list[tuple[str, Any]]:
    if isinstance(target, Map):
        return [(key, target[key]) for key in target.keys()]  # noqa: SIM118 (a Map, not a dict)
    return list(target.items()) if isinstance(target, dict) else []


def _set_entry(container: Map, key: str, current: Any, target: Any) -> None:
    """Make `container[key]` equal `target`, editing a shared value in place when kinds match."""
    kind = _kind(target)
    if kind is not None and _kind(current) is kind and _same_tag(current, target):
        sync_shared(current, target)
    elif kind is not None:
        container[key] = _empty_like(target)
        sync_shared(container[key], target)
    elif _kind(current) is not None or current != target or key not in container:
        container[key] = target


def _same_tag(current: Any, target: Any) -> bool:
    return not isinstance(target, XmlElement) or current.tag == target.tag


def _sync_map(current: Map, target: Map) -> None:
    wanted = dict(_target_items(target))
    for key in [k for k in current.keys() if k not in wanted]:  # noqa: SIM118 (a Map, not a dict)
        del current[key]
    for key in sorted(wanted):
        _set_entry(current, key, current.get(key), wanted[key])


def _shape(value: Any) -> Any:
    """Content with its shared types kept (a Map holding a Y.Text is not one holding a str)."""
    if isinstance(value, XmlElement):
        return ["XmlElement", value.tag, attributes_of(value), [_shape(c) for c in value.children]]
    if isinstance(value, XmlFragment):
        return ["XmlFragment", [_shape(c) for c in value.children]]
    if isinstance(value, XmlText | Text):
        return [type(value).__name__, [[_shape(c), a] for c, a in _delta(value)]]
    if isinstance(value, Map):
        return ["Map", {key: _shape(value[key]) for key in value.keys()}]  # noqa: SIM118
    if isinstance(value, Array):
        return ["Array", [_shape(item) for item in value]]
    return ["value", plain(value)]


def fingerprint(value: Any) -> str:
    """Equal fingerprints ⇔ equal content (types, attributes, children, marks)."""
    return json.dumps(_shape(value), sort_keys=True, default=str)


def _sync_array(current: Array, target: Array) -> None:
    cur = [fingerprint(v) for v in current]
    tgt = [fingerprint(v) for v in target]
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
    sync_shared(array[index], item)


# --- XML ------------------------------------------------------------------------------------


def _node_key(node: Any) -> tuple[str, Any]:
    """Nodes with equal keys are the same node edited, not a new one: text, or tag + id."""
    if isinstance(node, XmlElement):
        return node.tag or "", node.attributes.get("id")
    return "#text", None


def sync_xml(current: XmlFragment | XmlElement, target: XmlFragment | XmlElement) -> None:
    """Attributes (elements) key by key, then children: unchanged runs kept, changed nodes with
    the same tag and id edited in place, the rest deleted / inserted."""
    if isinstance(current, XmlElement) and isinstance(target, XmlElement):
        _sync_attributes(current, target)
    cur_nodes, tgt_nodes = list(current.children), list(target.children)
    cur = [fingerprint(n) for n in cur_nodes]
    tgt = [fingerprint(n) for n in tgt_nodes]
    if cur == tgt:
        return
    opcodes = difflib.SequenceMatcher(None, cur, tgt, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(opcodes):
        if tag != "equal":
            _replace_children(current, cur_nodes[i1:i2], tgt_nodes[j1:j2], i1)


def _replace_children(parent: Any, old: list[Any], new: list[Any], start: int) -> None:
    """Turn children[start : start+len(old)] into `new`: pair nodes of the same key in order and
    sync them in place, delete unpaired old ones, insert unpaired new ones."""
    keys_old = [_node_key(n) for n in old]
    keys_new = [_node_key(n) for n in new]
    pairs = difflib.SequenceMatcher(None, keys_old, keys_new, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(pairs):
        if tag == "equal":
            for offset in range(i2 - i1):
                sync_shared(old[i1 + offset], new[j1 + offset])
            continue
        if i2 > i1:
            del parent.children[start + i1 : start + i2]
        for offset, node in enumerate(new[j1:j2]):
            insert_node(parent, start + i1 + offset, node)


def insert_node(parent: Any, index: int, node: XmlElement | XmlText) -> None:
    """Insert an integrated copy of `node` (detached or from another doc) at `index`."""
    if isinstance(node, XmlText):
        inserted = parent.children.insert(index, XmlText())
        sync_text(inserted, node)
        return
    inserted = parent.children.insert(index, XmlElement(node.tag))
    sync_xml(inserted, node)


def _sync_attributes(current: XmlElement, target: XmlElement) -> None:
    """None is JS `undefined` (y-prosemirror writes it for a prop without default): the same as
    absent to every reader, and pycrdt could only write it back as `null`, which BlockNote then
    shows as a prop. So None is neither written nor counted as a difference."""
    have = {k: v for k, v in attribute_items(current) if v is not None}
    want = {k: v for k, v in attribute_items(target) if v is not None}
    for key in [k for k in have if k not in want]:
        del current.attributes[key]
    for key, value in sorted(want.items()):
        if (
            key not in have
            or plain(have[key]) != plain(value)
            or type(have[key]) is not type(value)
        ):
            current.attributes[key] = value


# --- text -----------------------------------------------------------------------------------


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


def _delta(text: Text | XmlText) -> Delta:
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


def _as_str(delta: Delta) -> str:
    return "".join(chunk for chunk, _attrs in delta if isinstance(chunk, str))


def sync_text(current: Text | XmlText, target: Text | XmlText | Delta) -> None:
    """Make `current`'s characters and marks equal the target (a text or its delta)."""
    target_delta = target if isinstance(target, list) else _delta(target)
    current_delta = _delta(current)
    if current_delta == target_delta:
        return
    if _has_embeds(target_delta) or _has_embeds(current_delta):
        _rebuild_text(current, target_delta)
        return
    old = _as_str(current_delta)
    offsets = _utf8_offsets(old)
    for start, end, replacement in reversed(_text_edits(old, _as_str(target_delta))):
        if end > start:
            del current[offsets[start] : offsets[end]]
        if replacement:
            current.insert(offsets[start], replacement)
    if _delta(current) != target_delta:
        _sync_formatting(current, target_delta)


def _sync_formatting(current: Text | XmlText, target_delta: Delta) -> None:
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


def _rebuild_text(current: Text | XmlText, target_delta: Delta) -> None:
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
