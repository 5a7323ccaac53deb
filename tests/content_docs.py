"""pycrdt docs shaped the way y-prosemirror writes BlockNote and Tiptap documents.

Shapes copied from what the real packages wrote in tests/js (BlockNote 0.55: `blockGroup` →
`blockContainer id=…` → `<type attrs…>` + optional nested `blockGroup`; marks as formatting
attributes `{"bold": {}}`, `{"link": {"href": …}}`, `{"textColor": {"stringValue": …}}`). The
end-to-end tests drive the real editors; these keep the pure unit tests fast and exact.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

PARAGRAPH_PROPS = {"backgroundColor": "default", "textAlignment": "left", "textColor": "default"}

Run = tuple[str, dict[str, Any] | None]


def text_node(parent: Any, runs: list[Run]) -> XmlText:
    text = parent.children.append(XmlText())
    position = 0
    for chunk, marks in runs:
        text.insert(position, chunk, marks)
        position += len(chunk.encode("utf-8"))
    return text


def bn_block(
    group: XmlElement,
    block_id: str,
    runs: list[Run] | None = None,
    *,
    kind: str = "paragraph",
    props: dict[str, Any] | None = None,
) -> XmlElement:
    """Append a blockContainer with its content node to `group`; returns the container."""
    container = group.children.append(XmlElement("blockContainer", {"id": block_id}))
    node = container.children.append(XmlElement(kind, dict(props or PARAGRAPH_PROPS)))
    if runs:
        text_node(node, runs)
    return container


def child_group(container: XmlElement) -> XmlElement:
    groups = [c for c in container.children if isinstance(c, XmlElement) and c.tag == "blockGroup"]
    return groups[0] if groups else container.children.append(XmlElement("blockGroup"))


def blocknote_doc(name: str = "prosemirror") -> Doc:
    """h1 heading, p1 paragraph (bold+colour, link, hard break, mention) with child c1, an image."""
    doc = Doc()
    group = doc.get(name, type=XmlFragment).children.append(XmlElement("blockGroup"))
    bn_block(group, "h1", [("Title", None)], kind="heading", props={**PARAGRAPH_PROPS, "level": 2})
    p1 = bn_block(
        group,
        "p1",
        [
            ("Hello ", None),
            ("bold", {"bold": {}, "textColor": {"stringValue": "red"}}),
            ("site", {"link": {"href": "https://example.org"}}),
        ],
    )
    paragraph = p1.children[0]
    paragraph.children.append(XmlElement("hardBreak"))
    paragraph.children.append(XmlElement("mention", {"user": "u-1"}))
    text_node(paragraph, [("end", None)])
    checked = {**PARAGRAPH_PROPS, "checked": True}
    bn_block(child_group(p1), "c1", [("child", None)], kind="checkListItem", props=checked)
    bn_block(group, "i1", kind="image", props={"url": "https://example.org/a.png", "caption": ""})
    return doc


def tiptap_doc(name: str = "default") -> Doc:
    """Tiptap StarterKit shapes: heading, paragraph with italic, a bullet list of two items."""
    doc = Doc()
    fragment = doc.get(name, type=XmlFragment)
    heading = fragment.children.append(XmlElement("heading", {"level": 1}))
    text_node(heading, [("Tiptap", None)])
    paragraph = fragment.children.append(XmlElement("paragraph"))
    text_node(paragraph, [("plain ", None), ("italic", {"italic": {}})])
    bullets = fragment.children.append(XmlElement("bulletList"))
    for label in ("one", "two"):
        item = bullets.children.append(XmlElement("listItem"))
        text_node(item.children.append(XmlElement("paragraph")), [(label, None)])
    return doc


def blocknote_group(doc: Doc, name: str = "prosemirror") -> XmlElement:
    return doc.get(name, type=XmlFragment).children[0]
