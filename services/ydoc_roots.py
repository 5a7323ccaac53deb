"""Every root of a Yjs doc, with its shared type found from the content, as JSON.

Pure functions over Yjs v1 updates (no I/O). A Yjs update names its roots but not their types:
the type is fixed by whoever calls `ydoc.getText(name)` / `getXmlFragment(name)` on the client.
So a server that only shows the roots it expects under the names it expects shows nothing of a
document an editor wrote under another name (Tiptap's `default`, BlockNote's `prosemirror`, La
Suite Docs' `document-store`), and a restore that guesses a type turns a fragment into text. Here
each root's type is read from what it holds:

* map entries (keyed items) ⇒ `Map`;
* characters or formatting in its sequence ⇒ `Text`;
* only XML elements / XML text in its sequence ⇒ `XmlFragment`;
* other values in its sequence ⇒ `Array`;
* nothing left (never written, or all deleted) ⇒ `None`: nothing to show, any type may claim it.

Each probe reads the root as one type in its own doc (yrs fixes a root's type on first access), so
one doc per type is loaded, never one per root.

Types: a root's JSON (plain dicts) is open on purpose: it mirrors whatever a client wrote into
the Yjs doc (XML nodes, attributes, marks, maps), which no schema of ours constrains.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from core.yjs import EMPTY_UPDATE, ProtocolError, call_pycrdt

EMPTY_UPDATES = (b"", EMPTY_UPDATE)


class ContentError(ValueError):
    """The bytes are not a Yjs v1 update this module can read."""


class RootKind(StrEnum):
    """A root's shared type, as named in the JSON (`content.roots[name].type`)."""

    TEXT = "text"
    MAP = "map"
    ARRAY = "array"
    XML_FRAGMENT = "xml_fragment"


SHARED_TYPES: dict[RootKind, type[Text] | type[Map] | type[Array] | type[XmlFragment]] = {
    RootKind.TEXT: Text,
    RootKind.MAP: Map,
    RootKind.ARRAY: Array,
    RootKind.XML_FRAGMENT: XmlFragment,
}


def load_doc(update: bytes, *, client_id: int | None = None) -> Doc:
    """A doc holding `update`; malformed bytes raise `ContentError` (pyo3 panics included)."""
    doc: Doc = Doc(client_id=client_id) if client_id is not None else Doc()
    if update in EMPTY_UPDATES:
        return doc
    try:
        call_pycrdt("update", doc.apply_update, update)
    except ProtocolError as err:
        raise ContentError(f"not a valid Yjs update: {err}") from err
    return doc


def root_names(update: bytes) -> list[str]:
    """Names of the roots the update holds, sorted (stable JSON, stable restore order)."""
    return sorted(load_doc(update).keys())


class _Probes(dict[RootKind, Doc]):
    """One doc per kind to read roots as that kind (a root read once as a type stays that type),
    each loaded only when a root is first probed as that kind: loading a large fragmented state
    costs seconds of event-loop time (bench/FINDINGS.md §6.1), and most documents need two or
    three kinds, not four."""

    def __init__(self, update: bytes, first: Doc) -> None:
        super().__init__()
        self._update = update
        self._spare: Doc | None = first  # the doc the names were read from: unbound, reusable

    def __missing__(self, kind: RootKind) -> Doc:
        doc, self._spare = self._spare or load_doc(self._update), None
        self[kind] = doc
        return doc


def root_kinds(update: bytes) -> dict[str, RootKind | None]:
    """Each root's type, inferred from its content (module docstring); None: empty."""
    doc = load_doc(update)
    names = sorted(doc.keys())
    if not names:
        return {}
    probes = _Probes(update, doc)
    return {name: _kind_of(name, probes) for name in names}


def _kind_of(name: str, probes: dict[RootKind, Doc]) -> RootKind | None:
    if list(probes[RootKind.MAP].get(name, type=Map).keys()):
        return RootKind.MAP
    delta = probes[RootKind.TEXT].get(name, type=Text).diff()
    if any(isinstance(chunk, str) or attrs for chunk, attrs in delta):
        return RootKind.TEXT
    items = list(probes[RootKind.ARRAY].get(name, type=Array))
    if items and all(isinstance(item, XmlElement | XmlText) for item in items):
        return RootKind.XML_FRAGMENT
    if items:
        return RootKind.ARRAY
    return RootKind.TEXT if delta else None  # a text holding only embeds


@dataclass(frozen=True)
class Roots:
    """A loaded doc with each non-empty root bound to its type (`shared[name]`)."""

    doc: Doc
    kinds: dict[str, RootKind]

    def get(self, name: str) -> Any:
        return self.doc.get(name, type=SHARED_TYPES[self.kinds[name]])

    def named(self, kind: RootKind) -> list[str]:
        return [name for name, k in self.kinds.items() if k is kind]


def bind_roots(update: bytes, *, client_id: int | None = None) -> Roots:
    """The doc of `update` with its non-empty roots typed (empty roots are left unbound)."""
    kinds = {name: kind for name, kind in root_kinds(update).items() if kind is not None}
    return Roots(load_doc(update, client_id=client_id), kinds)


# --- JSON ----------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A shared value as JSON: Text → str, Map → dict, Array → list, XML → ProseMirror-style
    nodes, integral floats → int (Yjs numbers are doubles; `1` written by JS reads back as `1.0`)."""
    if isinstance(value, XmlText):
        return xml_text_json(value)
    if isinstance(value, XmlElement):
        return xml_node_json(value)
    if isinstance(value, XmlFragment):
        return {"type": "doc", "content": xml_children_json(value)}
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
    return str(value)  # sub-documents and other exotic values: shown as text, never fail a GET


def attribute_items(element: XmlElement) -> list[tuple[str, Any]]:
    """(name, value) pairs; pycrdt's view types `__iter__` as a plain Iterable."""
    return list(element.attributes.__iter__())


def attributes_of(element: XmlElement) -> dict[str, Any]:
    """An element's attributes as JSON, sorted. y-prosemirror never writes null, but it does
    write `undefined` (a BlockNote prop with no default), which reads back as None: left out, as
    the editors leave it out."""
    pairs = sorted(attribute_items(element))
    return {key: plain(value) for key, value in pairs if value is not None}


def mark_name(key: str) -> str:
    """y-prosemirror stores overlapping marks of one type as `name--<hash>`: the mark's name."""
    return key.split("--", 1)[0]


def marks_json(attrs: dict[str, Any] | None) -> list[dict[str, Any]]:
    """ProseMirror marks from a text run's formatting attributes, as y-prosemirror's
    `yXmlFragmentToProsemirrorJSON` shows them (`{"bold": {}}` → `{"type": "bold", "attrs": {}}`)."""
    marks = []
    for key, value in sorted((attrs or {}).items()):
        if value is None:
            continue
        mark: dict[str, Any] = {"type": mark_name(key)}
        if isinstance(value, dict):  # y-prosemirror's own JSON keeps `attrs: {}` too
            mark["attrs"] = plain(value)
        elif value is not True:  # a plain Y.Text's Quill-style value (`{"size": 12}`)
            mark["attrs"] = {"value": plain(value)}
        marks.append(mark)
    return marks


def xml_text_json(text: XmlText | Text) -> list[dict[str, Any]]:
    """A text's runs as ProseMirror text nodes (marks kept); embeds as `{"type": "embed"}`."""
    nodes = []
    for chunk, attrs in text.diff():
        if isinstance(chunk, str):
            node: dict[str, Any] = {"type": "text", "text": chunk}
        else:
            node = {"type": "embed", "value": plain(chunk)}
        marks = marks_json(attrs)
        if marks:
            node["marks"] = marks
        nodes.append(node)
    return nodes


def xml_node_json(element: XmlElement) -> dict[str, Any]:
    node: dict[str, Any] = {"type": element.tag or ""}
    attrs = attributes_of(element)
    if attrs:
        node["attrs"] = attrs
    content = xml_children_json(element)
    if content:
        node["content"] = content
    return node


def xml_children_json(parent: XmlFragment | XmlElement) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for child in parent.children:
        if isinstance(child, XmlText):
            nodes.extend(xml_text_json(child))
        elif isinstance(child, XmlElement):
            nodes.append(xml_node_json(child))
    return nodes


def text_json(text: Text) -> dict[str, Any]:
    value: dict[str, Any] = {"type": RootKind.TEXT.value, "value": str(text)}
    if any(attrs or not isinstance(chunk, str) for chunk, attrs in text.diff()):
        value["delta"] = xml_text_json(text)  # formatting or embeds: shown, not flattened away
    return value


def root_json(roots: Roots, name: str) -> dict[str, Any]:
    """`{"type": kind, "value": …}` for one root (Text also has `delta` when formatted)."""
    kind = roots.kinds[name]
    shared = roots.get(name)
    if kind is RootKind.TEXT:
        return text_json(shared)
    return {"type": kind.value, "value": plain(shared)}


def roots_json(roots: Roots) -> dict[str, dict[str, Any]]:
    return {name: root_json(roots, name) for name in sorted(roots.kinds)}
