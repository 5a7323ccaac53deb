#!/usr/bin/env node
// Stock Yjs clients for the Python test suite.
//
// One long-running Node process manages any number of named clients, each a Y.Doc plus the real
// y-websocket WebsocketProvider -- the primary client the server must serve unchanged. The Python
// side (tests/yjs_client.py) writes one JSON command per line on stdin and reads one JSON line per
// reply on stdout:
//
//   -> {"id": 7, "cmd": "insert_text", "name": "alice", "key": "text", "index": 0, "text": "hi"}
//   <- {"id": 7, "ok": true}
//   <- {"id": 8, "ok": false, "error": "no client named bob"}
//
// Lines without an "id" are unsolicited events, e.g.
//   {"event": "close", "name": "alice", "code": 4403, "reason": "..."}
//   {"event": "status", "name": "alice", "status": "connected"}
//   {"event": "sync", "name": "alice", "synced": true}
//   {"event": "permission_denied", "name": "alice", "reason": "..."}
//
// stdout carries only protocol lines: console.log is redirected to stderr so library logging can
// never corrupt the stream. Waiting commands (wait_synced, wait_json, wait_awareness, wait_close,
// wait_state_vector) resolve on the provider's own events, with a timeout, so tests never sleep.

import { createHash } from 'node:crypto'
import readline from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider, messageAuth } from 'y-websocket'
import * as authProtocol from 'y-protocols/auth'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { editorCommands } from './editors.mjs'

const DEFAULT_TIMEOUT_MS = 10000
const DEFAULT_ROOTS = { text: 'text', map: 'map', array: 'array' }

console.log = (...args) => console.error(...args)
// Each provider registers a process 'exit' listener; dozens of clients are normal here.
process.setMaxListeners(0)

/** @type {Map<string, Client>} */
const clients = new Map()

const send = (message) => process.stdout.write(JSON.stringify(message) + '\n')
const emit = (event, name, fields = {}) => send({ event, name, ...fields })

// ------------------------------------------------------------------------------------------------
// Clients
// ------------------------------------------------------------------------------------------------

class Client {
  constructor (name, { url, room, token, params, protocols, clientId }) {
    this.name = name
    this.doc = new Y.Doc()
    if (clientId != null) this.doc.clientID = clientId
    this.closes = []
    this.statuses = []
    this.permissionDenied = []
    this.received = { sync: 0, awareness: 0, auth: 0, query_awareness: 0 }
    this.listeners = new Set()
    const allParams = { ...(params || {}) }
    if (token != null) allParams.token = token
    this.provider = new WebsocketProvider(url, room, this.doc, {
      WebSocketPolyfill: WebSocket,
      params: allParams,
      protocols: protocols || [],
      connect: false,
      disableBc: true
    })
    this.instrumentMessageHandlers()
    this.provider.on('status', ({ status }) => {
      this.statuses.push(status)
      emit('status', name, { status })
      this.notify()
    })
    this.provider.on('sync', (synced) => {
      emit('sync', name, { synced })
      this.notify()
    })
    this.provider.on('connection-close', (event) => {
      // event is null when the provider closed the socket itself (disconnect(), watchdog)
      const close = event == null
        ? { code: null, reason: 'closed locally' }
        : { code: event.code, reason: String(event.reason || '') }
      this.closes.push(close)
      emit('close', name, close)
      this.notify()
    })
    this.provider.on('closed', ({ code, reason }) => {
      emit('closed', name, { code, reason: String(reason || '') })
      this.notify()
    })
    this.provider.on('connection-error', (event) => {
      emit('connection_error', name, { message: String(event?.message || event?.error || event) })
    })
    this.doc.on('update', () => this.notify())
    this.provider.awareness.on('change', () => this.notify())
    this.provider.connect()
  }

  /** Count received frames by type and capture permission-denied reasons (y-protocols auth). */
  instrumentMessageHandlers () {
    const kinds = ['sync', 'awareness', 'auth', 'query_awareness']
    const handlers = this.provider.messageHandlers
    kinds.forEach((kind, type) => {
      const original = handlers[type]
      handlers[type] = (encoder, decoder, provider, emitSynced, messageType) => {
        this.received[kind]++
        if (type === messageAuth) {
          authProtocol.readAuthMessage(decoding.clone(decoder), this.doc, (_doc, reason) => {
            this.permissionDenied.push(reason)
            emit('permission_denied', this.name, { reason })
          })
        }
        original(encoder, decoder, provider, emitSynced, messageType)
        this.notify()
      }
    })
  }

  /** Resolve when check() returns a non-undefined value, re-checking on every client event. */
  waitFor (check, timeoutMs, describe) {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        let value
        try {
          value = check()
        } catch (error) {
          finish()
          reject(error)
          return
        }
        if (value !== undefined) {
          finish()
          resolve(value)
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`timeout after ${timeoutMs} ms waiting for ${describe()}`))
      }, timeoutMs)
      const finish = () => {
        clearTimeout(timer)
        this.listeners.delete(attempt)
      }
      this.listeners.add(attempt)
      attempt()
    })
  }

  notify () {
    for (const listener of [...this.listeners]) listener()
  }

  destroy () {
    this.provider.destroy()
    this.doc.destroy()
    this.notify()
  }
}

const client = (name) => {
  const found = clients.get(name)
  if (!found) throw new Error(`no client named ${JSON.stringify(name)}`)
  return found
}

// ------------------------------------------------------------------------------------------------
// Document content
// ------------------------------------------------------------------------------------------------

const rootType = (doc, key, kind) => {
  switch (kind) {
    case 'text': return doc.getText(key)
    case 'map': return doc.getMap(key)
    case 'array': return doc.getArray(key)
    case 'xml': return doc.getXmlFragment(key)
    default: throw new Error(`unknown root type kind ${JSON.stringify(kind)}`)
  }
}

/** JSON of the named root types: {key: kind} -> {key: content}. */
const docJson = (doc, roots = DEFAULT_ROOTS) => {
  const result = {}
  for (const [key, kind] of Object.entries(roots)) {
    const type = rootType(doc, key, kind)
    result[key] = kind === 'text' || kind === 'xml' ? type.toString() : type.toJSON()
  }
  return result
}

/** JSON with object keys sorted at every level, so equal content gives equal strings. */
const canonicalJson = (value) => JSON.stringify(value, (_key, v) =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
    : v
)

const stateVectorMap = (doc) =>
  Object.fromEntries([...Y.decodeStateVector(Y.encodeStateVector(doc))].map(([c, k]) => [String(c), k]))

const docState = (doc, roots) => {
  const json = docJson(doc, roots)
  const stateVector = stateVectorMap(doc)
  return {
    json,
    state_vector: Buffer.from(Y.encodeStateVector(doc)).toString('base64'),
    state_vector_map: stateVector,
    update: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('base64'),
    // Comparable across Yjs and pycrdt: content JSON plus state vector, canonicalized.
    state_hash: createHash('sha256').update(canonicalJson({ json, state_vector: stateVector })).digest('hex')
  }
}

// ------------------------------------------------------------------------------------------------
// Deterministic random edits
// ------------------------------------------------------------------------------------------------

/** mulberry32: tiny seeded PRNG, so the same seed gives the same edit sequence every run. */
const seededRandom = (seed) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const EDIT_ALPHABET = ['a', 'b', 'c', ' ', 'é', 'ß', '中', '👋', '\n']

const randomEdits = (doc, count, seed, { textKey = 'text', mapKey = 'map', arrayKey = 'array', alphabet = EDIT_ALPHABET }) => {
  const random = seededRandom(seed)
  const int = (n) => Math.floor(random() * n)
  const word = () => Array.from({ length: 1 + int(5) }, () => alphabet[int(alphabet.length)]).join('')
  const text = doc.getText(textKey)
  const map = doc.getMap(mapKey)
  const array = doc.getArray(arrayKey)
  for (let i = 0; i < count; i++) {
    const choice = int(10)
    if (choice < 4) {
      text.insert(int(text.length + 1), word())
    } else if (choice < 6 && text.length > 0) {
      const index = int(text.length)
      text.delete(index, 1 + int(Math.min(3, text.length - index)))
    } else if (choice < 8) {
      const value = [int(1000), word(), { n: int(10), s: word() }, [int(5), null, true]][int(4)]
      map.set(`k${int(8)}`, value)
    } else if (choice < 9 || array.length === 0) {
      array.insert(int(array.length + 1), [word()])
    } else {
      array.delete(int(array.length), 1)
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Commands
// ------------------------------------------------------------------------------------------------

const timeoutOf = (command) => command.timeout_ms ?? DEFAULT_TIMEOUT_MS

const commands = {
  hello: () => ({ versions: { node: process.version } }),

  connect: (command) => {
    if (clients.has(command.name)) throw new Error(`client ${command.name} already exists`)
    const created = new Client(command.name, {
      url: command.url,
      room: command.room,
      token: command.token,
      params: command.params,
      protocols: command.protocols,
      clientId: command.client_id
    })
    clients.set(command.name, created)
    return { client_id: created.doc.clientID }
  },

  wait_synced: async (command) => {
    const c = client(command.name)
    await c.waitFor(
      () => {
        if (c.provider.synced) return true
        if (!c.provider.shouldConnect && c.closes.length > 0) {
          const last = c.closes[c.closes.length - 1]
          throw new Error(`connection closed before sync: code ${last.code} ${last.reason}`)
        }
        return undefined
      },
      timeoutOf(command),
      () => `${command.name} to sync (status ${c.statuses.at(-1)}, closes ${JSON.stringify(c.closes)})`
    )
    return {}
  },

  insert_text: ({ name, key = 'text', index, text }) => {
    client(name).doc.getText(key).insert(index, text)
    return {}
  },

  delete_text: ({ name, key = 'text', index, length }) => {
    client(name).doc.getText(key).delete(index, length)
    return {}
  },

  map_set: ({ name, key = 'map', field, value }) => {
    client(name).doc.getMap(key).set(field, value)
    return {}
  },

  map_delete: ({ name, key = 'map', field }) => {
    client(name).doc.getMap(key).delete(field)
    return {}
  },

  array_push: ({ name, key = 'array', values }) => {
    client(name).doc.getArray(key).push(values)
    return {}
  },

  array_delete: ({ name, key = 'array', index, length = 1 }) => {
    client(name).doc.getArray(key).delete(index, length)
    return {}
  },

  burst_edits: ({ name, count, key = 'text' }) => {
    // `count` separate transactions in one synchronous loop: the provider sends one update frame
    // per transaction as fast as the socket takes them (an importer or an agent writing).
    const text = client(name).doc.getText(key)
    for (let i = 0; i < count; i++) text.insert(text.length, String.fromCharCode(97 + (i % 26)))
    return {}
  },

  random_edits: ({ name, count, seed, text_key, map_key, array_key, alphabet }) => {
    const { doc } = client(name)
    randomEdits(doc, count, seed, { textKey: text_key, mapKey: map_key, arrayKey: array_key, alphabet: alphabet ?? EDIT_ALPHABET })
    return {}
  },

  apply_update: ({ name, update }) => {
    Y.applyUpdate(client(name).doc, Buffer.from(update, 'base64'), 'harness')
    return {}
  },

  state: ({ name, roots }) => docState(client(name).doc, roots ?? DEFAULT_ROOTS),

  wait_json: async (command) => {
    const c = client(command.name)
    const expected = canonicalJson(command.json)
    const roots = command.roots || Object.fromEntries(
      Object.keys(command.json).map((key) => [key, DEFAULT_ROOTS[key] || 'map'])
    )
    await c.waitFor(
      () => (canonicalJson(docJson(c.doc, roots)) === expected ? true : undefined),
      timeoutOf(command),
      () => `${command.name} content ${canonicalJson(docJson(c.doc, roots))} to equal ${expected}`
    )
    return docState(c.doc, roots)
  },

  wait_state_vector: async (command) => {
    // Waits until the doc has seen at least clock k of every client c in {c: k}: the way to wait
    // for convergence after concurrent edits, whose merged content nobody knows in advance.
    const c = client(command.name)
    const expected = Object.entries(command.state_vector_map)
    const covered = () => {
      const current = Y.decodeStateVector(Y.encodeStateVector(c.doc))
      return expected.every(([clientId, clock]) => (current.get(Number(clientId)) ?? 0) >= clock)
    }
    await c.waitFor(
      () => (covered() ? true : undefined),
      timeoutOf(command),
      () => `${command.name} state vector ${JSON.stringify(stateVectorMap(c.doc))} to cover ${JSON.stringify(command.state_vector_map)}`
    )
    return docState(c.doc, command.roots ?? DEFAULT_ROOTS)
  },

  set_awareness: ({ name, state }) => {
    client(name).provider.awareness.setLocalState(state)
    return {}
  },

  set_awareness_field: ({ name, field, value }) => {
    client(name).provider.awareness.setLocalStateField(field, value)
    return {}
  },

  awareness: ({ name }) => {
    const { provider, doc } = client(name)
    const states = Object.fromEntries(
      [...provider.awareness.getStates()].map(([clientId, state]) => [String(clientId), state])
    )
    return { client_id: doc.clientID, states }
  },

  wait_awareness: async (command) => {
    // Waits until client_id's state equals `state`; state null means "until it is gone".
    const c = client(command.name)
    const expected = canonicalJson(command.state ?? null)
    const current = () => canonicalJson(c.provider.awareness.getStates().get(command.client_id) ?? null)
    await c.waitFor(
      () => (current() === expected ? true : undefined),
      timeoutOf(command),
      () => `${command.name} to see awareness of ${command.client_id} = ${expected} (now ${current()})`
    )
    return {}
  },

  disconnect: ({ name }) => {
    client(name).provider.disconnect()
    return {}
  },

  reconnect: ({ name }) => {
    client(name).provider.connect()
    return {}
  },

  destroy: ({ name }) => {
    client(name).destroy()
    clients.delete(name)
    return {}
  },

  close_codes: ({ name }) => ({ closes: client(name).closes }),

  wait_close: async (command) => {
    // Resolves once `count` close events (default 1) have been seen; returns them all.
    const c = client(command.name)
    const count = command.count ?? 1
    await c.waitFor(
      () => (c.closes.length >= count ? true : undefined),
      timeoutOf(command),
      () => `${command.name} to see ${count} close event(s), saw ${JSON.stringify(c.closes)}`
    )
    return { closes: c.closes }
  },

  sync_status: ({ name }) => {
    const { provider, statuses } = client(name)
    return {
      synced: provider.synced,
      status: statuses.at(-1) ?? null,
      wsconnected: provider.wsconnected,
      should_connect: provider.shouldConnect
    }
  },

  permission_denied: ({ name }) => ({ reasons: client(name).permissionDenied }),

  received: ({ name }) => ({ received: client(name).received }),

  quit: () => {
    for (const c of clients.values()) c.destroy()
    clients.clear()
    setImmediate(() => process.exit(0))
    return {}
  }
}

Object.assign(commands, editorCommands(client))

const handle = async (line) => {
  let command
  try {
    command = JSON.parse(line)
  } catch (error) {
    send({ id: null, ok: false, error: `bad JSON command: ${error.message}` })
    return
  }
  const { id } = command
  try {
    const run = commands[command.cmd]
    if (!run) throw new Error(`unknown command ${JSON.stringify(command.cmd)}`)
    const result = await run(command)
    send({ id, ok: true, ...result })
  } catch (error) {
    send({ id, ok: false, error: String(error?.message || error) })
  }
}

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
input.on('line', (line) => {
  if (line.trim()) handle(line)
})
// The test process went away: do not linger as an orphan.
input.on('close', () => commands.quit())
process.on('unhandledRejection', (error) => console.error('unhandled rejection', error))
send({ event: 'ready', name: null, versions: { node: process.version } })
