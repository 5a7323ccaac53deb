#!/usr/bin/env node
// Writes frames produced by the real Yjs / y-protocols / lib0 encoders as hex, so the Python codec
// tests can check that live/protocol.py decodes exactly what stock clients send.
//
// Usage (from tests/js):  node make_protocol_fixtures.mjs > fixtures/protocol_frames.json
// The output is deterministic (fixed client ids, no timestamps), so re-running it must reproduce
// the checked-in file byte for byte; tests/test_protocol_codec.py checks that too.

import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import * as awarenessProtocol from 'y-protocols/awareness'

const MESSAGE_SYNC = 0
const MESSAGE_AWARENESS = 1
const MESSAGE_AUTH = 2
const MESSAGE_QUERY_AWARENESS = 3

const hex = (bytes) => Buffer.from(bytes).toString('hex')

const frame = (write) => {
  const encoder = encoding.createEncoder()
  write(encoder)
  return encoding.toUint8Array(encoder)
}

const syncStep1Frame = (doc) => frame((e) => {
  encoding.writeVarUint(e, MESSAGE_SYNC)
  syncProtocol.writeSyncStep1(e, doc)
})

const syncStep2Frame = (doc) => frame((e) => {
  encoding.writeVarUint(e, MESSAGE_SYNC)
  syncProtocol.writeSyncStep2(e, doc)
})

const updateFrame = (update) => frame((e) => {
  encoding.writeVarUint(e, MESSAGE_SYNC)
  syncProtocol.writeUpdate(e, update)
})

const newDoc = (clientID, opts = {}) => {
  const doc = new Y.Doc(opts)
  doc.clientID = clientID // fixed ids keep the output deterministic
  return doc
}

/** A document touching every content kind a stock client writes. */
const richDocument = () => {
  const doc = newDoc(1001)
  const text = doc.getText('text')
  text.insert(0, 'hello wörld 👋')
  text.format(0, 5, { bold: true })
  text.insertEmbed(5, { image: 'https://example.invalid/cat.png' })
  text.delete(6, 1)
  const map = doc.getMap('map')
  map.set('int', 42)
  map.set('negative', -7)
  map.set('float', 2.5)
  map.set('big', 2 ** 40)
  map.set('bool', true)
  map.set('null', null)
  map.set('string', 'ünïcode')
  map.set('nested', { a: [1, { b: 'c' }], d: { e: null } })
  map.set('bytes', new Uint8Array([0, 1, 254, 255]))
  const child = new Y.Map()
  map.set('child', child)
  child.set('x', 'y')
  map.set('child', 'replaced') // the old child map becomes garbage-collected structs
  const array = doc.getArray('array')
  array.push([1, 'two', { three: 3 }])
  array.push([new Y.Text('inner text')])
  array.delete(0, 1)
  const fragment = doc.getXmlFragment('xml')
  const element = new Y.XmlElement('paragraph')
  element.setAttribute('align', 'left')
  element.insert(0, [new Y.XmlText('xml text')])
  fragment.insert(0, [element])
  return doc
}

/** An update with a gap: Y.mergeUpdates writes a Skip struct between the two runs. */
const updateWithSkip = () => {
  const doc = newDoc(2002)
  const updates = []
  doc.on('update', (update) => updates.push(update))
  const text = doc.getText('text')
  text.insert(0, 'ab')
  text.insert(2, 'cd')
  text.insert(4, 'ef')
  return Y.mergeUpdates([updates[0], updates[2]])
}

/**
 * An XmlHook, which Yjs writes and pycrdt 0.14.13 (yrs) cannot decode: the server must reject it
 * rather than publish an update no room could load.
 */
const updateWithXmlHook = () => {
  const doc = newDoc(4004)
  doc.getXmlFragment('xml').insert(0, [new Y.XmlHook('hook')])
  return Y.encodeStateAsUpdate(doc)
}

const awarenessFrames = () => {
  const doc = newDoc(3003)
  const awareness = new awarenessProtocol.Awareness(doc)
  awareness.setLocalState({ user: { name: 'Zoë', color: '#ff0000' }, cursor: { anchor: 1, head: 4 } })
  const present = frame((e) => {
    encoding.writeVarUint(e, MESSAGE_AWARENESS)
    encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(awareness, [3003]))
  })
  awareness.setLocalState(null)
  const removed = frame((e) => {
    encoding.writeVarUint(e, MESSAGE_AWARENESS)
    encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(awareness, [3003]))
  })
  awareness.destroy()
  return { present, removed }
}

const main = () => {
  const doc = richDocument()
  const incremental = []
  doc.on('update', (update) => incremental.push(update))
  doc.getText('text').insert(0, '>')
  const { present, removed } = awarenessFrames()
  const frames = [
    {
      name: 'sync_step1_empty',
      kind: 'SyncStep1',
      hex: hex(syncStep1Frame(newDoc(1)))
    },
    {
      name: 'sync_step1_rich',
      kind: 'SyncStep1',
      hex: hex(syncStep1Frame(doc)),
      state_vector: Object.fromEntries(Y.decodeStateVector(Y.encodeStateVector(doc)))
    },
    {
      name: 'sync_step2_empty',
      kind: 'SyncStep2',
      hex: hex(syncStep2Frame(newDoc(1)))
    },
    {
      name: 'sync_step2_rich',
      kind: 'SyncStep2',
      hex: hex(syncStep2Frame(doc)),
      json: {
        text: doc.getText('text').toString(),
        map: doc.getMap('map').toJSON(),
        array: doc.getArray('array').toJSON(),
        xml: doc.getXmlFragment('xml').toString()
      }
    },
    {
      name: 'update_keystroke',
      kind: 'SyncUpdate',
      hex: hex(updateFrame(incremental[0]))
    },
    {
      name: 'update_with_skip',
      kind: 'SyncUpdate',
      hex: hex(updateFrame(updateWithSkip()))
    },
    {
      name: 'update_xml_hook_unsupported_by_pycrdt',
      kind: 'SyncUpdate',
      hex: hex(updateFrame(updateWithXmlHook())),
      pycrdt_rejects: true
    },
    {
      name: 'awareness_present',
      kind: 'AwarenessMessage',
      hex: hex(present),
      entries: [{ client_id: 3003, clock: 1, state: { user: { name: 'Zoë', color: '#ff0000' }, cursor: { anchor: 1, head: 4 } } }]
    },
    {
      name: 'awareness_removed',
      kind: 'AwarenessMessage',
      hex: hex(removed),
      entries: [{ client_id: 3003, clock: 2, state: null }]
    },
    {
      name: 'query_awareness',
      kind: 'QueryAwareness',
      hex: hex(frame((e) => encoding.writeVarUint(e, MESSAGE_QUERY_AWARENESS)))
    },
    {
      name: 'permission_denied',
      kind: 'AuthMessage',
      hex: hex(frame((e) => {
        encoding.writeVarUint(e, MESSAGE_AUTH)
        authProtocol.writePermissionDenied(e, 'read-only: viewers cannot edit ✋')
      })),
      reason: 'read-only: viewers cannot edit ✋'
    }
  ]
  process.stdout.write(JSON.stringify({ generator: 'tests/js/make_protocol_fixtures.mjs', frames }, null, 2) + '\n')
}

main()
