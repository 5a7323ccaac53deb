// The real editors' document models, for the harness clients (client.mjs): BlockNote
// (@blocknote/core, headless: its schema and its own Yjs conversions) and Tiptap (StarterKit's
// ProseMirror schema), both written into the client's Y.Doc by y-prosemirror the way its
// ySyncPlugin does when a user edits: `updateYFragment` turns the fragment into the editor's new
// ProseMirror document with a minimal diff, inside one Yjs transaction. The client's stock
// y-websocket provider then sends it, like any browser would.
//
// Commands (merged into client.mjs's command table):
//   editor_write {name, editor: "blocknote"|"tiptap", fragment, content}
//       blocknote: content = BlockNote blocks (PartialBlock[]); tiptap: a ProseMirror doc JSON
//   editor_read  {name, editor, fragment} -> {content}: what the editor itself reads from the doc
//       (BlockNote's yXmlFragmentToBlocks / y-prosemirror's yXmlFragmentToProsemirrorJSON)
//   editor_append {name, fragment, block_id, text, inline?}: a BlockNote user types `text` (or
//       inserts the inline item `inline`, e.g. a mention) at the end of block `block_id` (read,
//       edit, write back: the same minimal diff a keystroke makes)
//   editor_anchor {name, fragment, block_id, from, to, node} -> {start, end}: the Yjs relative
//       positions (`Y.relativePositionToJSON`) of a text range in text node `node` (default 0) of
//       block `block_id`'s inline content (a mention splits it into several), as a
//       comment UI anchors a selection (end sticks to the character before it)
//   editor_wait  {name, editor, fragment, contains, timeout_ms} -> {content, waited_ms}: resolves
//       once the editor's JSON of the fragment contains the string `contains`

import { _blocksToProsemirrorNode, yXmlFragmentToBlocks } from '@blocknote/core/yjs'
import { getSchema } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import { updateYFragment, yXmlFragmentToProsemirrorJSON } from 'y-prosemirror'
import * as Y from 'yjs'
import { createEditor } from './product_schema.mjs'

// BlockNote with the product's schema: its defaults plus the mention inline content.
const blocknote = createEditor()
const tiptapSchema = getSchema([StarterKit])

const toProsemirror = (editor, content) => {
  if (editor === 'blocknote') return _blocksToProsemirrorNode(blocknote, content)
  if (editor === 'tiptap') return tiptapSchema.nodeFromJSON(content)
  throw new Error(`unknown editor ${JSON.stringify(editor)}`)
}

const read = (editor, fragment) =>
  editor === 'blocknote' ? yXmlFragmentToBlocks(blocknote, fragment) : yXmlFragmentToProsemirrorJSON(fragment)

/** What ySyncPlugin does on a ProseMirror transaction: diff the fragment to the new document. */
const write = (doc, fragment, pmDoc) => {
  doc.transact(() => {
    updateYFragment(doc, fragment, pmDoc, { mapping: new Map(), isOMark: new Map() })
  }, 'editor')
}

const findBlock = (blocks, id) => {
  for (const block of blocks) {
    if (block.id === id) return block
    const inChildren = findBlock(block.children || [], id)
    if (inChildren) return inChildren
  }
  return undefined
}

/** Text node `nth` (a Y.XmlText) of the inline content of the blockContainer with `id`. */
const blockText = (node, id, nth) => {
  for (const child of node.toArray()) {
    if (!(child instanceof Y.XmlElement)) continue
    if (child.nodeName === 'blockContainer' && child.getAttribute('id') === id) {
      const content = child.toArray().find((c) => c instanceof Y.XmlElement && c.nodeName !== 'blockGroup')
      return content?.toArray().filter((c) => c instanceof Y.XmlText)[nth]
    }
    const found = blockText(child, id, nth)
    if (found) return found
  }
  return undefined
}

export const editorCommands = (client) => ({
  editor_anchor: ({ name, fragment = 'prosemirror', block_id: blockId, from, to, node = 0 }) => {
    const text = blockText(client(name).doc.getXmlFragment(fragment), blockId, node)
    if (!text) throw new Error(`no text in block ${blockId}`)
    return {
      start: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, from, 0)),
      end: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, to, -1))
    }
  },

  editor_write: ({ name, editor, fragment = 'prosemirror', content }) => {
    const { doc } = client(name)
    write(doc, doc.getXmlFragment(fragment), toProsemirror(editor, content))
    return {}
  },

  editor_read: ({ name, editor, fragment = 'prosemirror' }) =>
    ({ content: read(editor, client(name).doc.getXmlFragment(fragment)) }),

  editor_append: ({ name, fragment = 'prosemirror', block_id: blockId, text, inline }) => {
    const { doc } = client(name)
    const yfragment = doc.getXmlFragment(fragment)
    const blocks = yXmlFragmentToBlocks(blocknote, yfragment)
    const block = findBlock(blocks, blockId)
    if (!block) throw new Error(`no block ${blockId}`)
    block.content.push(inline ?? { type: 'text', text, styles: {} })
    write(doc, yfragment, toProsemirror('blocknote', blocks))
    return {}
  },

  editor_wait: async ({ name, editor, fragment = 'prosemirror', contains, timeout_ms: timeoutMs }) => {
    const c = client(name)
    const yfragment = c.doc.getXmlFragment(fragment)
    const started = Date.now()
    const current = () => JSON.stringify(read(editor, yfragment))
    await c.waitFor(
      () => (current().includes(contains) ? true : undefined),
      timeoutMs ?? 10000,
      () => `${name}'s ${editor} content to contain ${JSON.stringify(contains)} (now ${current()})`
    )
    return { content: read(editor, yfragment), waited_ms: Date.now() - started }
  }
})
