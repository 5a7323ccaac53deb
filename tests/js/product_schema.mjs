// The product's BlockNote schema: BlockNote's defaults plus the mention inline content, as an app
// adds one (BlockNote ships none; its documented custom mention is an inline content type
// "mention" with props and no content). The harness editors (editors.mjs) write with it and the
// server's block JSON Schema is generated from it (blocknote_schema.mjs), so what the server
// validates, writes and detects is exactly what this editor writes into Yjs: inside a paragraph,
// `<mention user="<user id>"></mention>` (a Y.XmlElement named `mention`, its props as attributes).

import {
  BlockNoteEditor,
  BlockNoteSchema,
  createInlineContentSpec,
  defaultInlineContentSpecs
} from '@blocknote/core'

// `user` is the mentioned user's id (services/body_mentions.py notifies them).
export const Mention = createInlineContentSpec(
  { type: 'mention', propSchema: { user: { default: '' } }, content: 'none' },
  { render: () => ({ dom: null }) }
)

export const productSchema = BlockNoteSchema.create({
  inlineContentSpecs: { ...defaultInlineContentSpecs, mention: Mention }
})

export const createEditor = () => BlockNoteEditor.create({ schema: productSchema })
