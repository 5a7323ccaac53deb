#!/usr/bin/env node
// Applies Yjs v1 updates (hex, in order) to a fresh stock Y.Doc and prints what Yjs made of them,
// so the Python tests can check that server-minted diffs (restores) converge in real Yjs, not
// only in pycrdt.
//
//   stdin:  {"updates": ["<hex>", ...], "fragments": ["prosemirror", ...]}
//   stdout: {"state": "<hex of Y.encodeStateAsUpdate>", "pending": bool,
//            "blocks": {...}, "root": [...], "meta": {...}, "text": "...", "map": {...}, "array": [...],
//            "xml": {"prosemirror": "<Y.XmlFragment.toString()>", ...}}

import * as Y from 'yjs'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const { updates, fragments = [] } = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const doc = new Y.Doc()
for (const hex of updates) Y.applyUpdate(doc, Buffer.from(hex, 'hex'))

process.stdout.write(JSON.stringify({
  state: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('hex'),
  pending: doc.store.pendingStructs !== null || doc.store.pendingDs !== null,
  blocks: doc.getMap('blocks').toJSON(),
  root: doc.getArray('root').toJSON(),
  meta: doc.getMap('meta').toJSON(),
  text: doc.getText('text').toString(),
  map: doc.getMap('map').toJSON(),
  array: doc.getArray('array').toJSON(),
  xml: Object.fromEntries(fragments.map((name) => [name, doc.getXmlFragment(name).toString()]))
}) + '\n')
