#!/usr/bin/env node
// R17-lite driver, one mode per run (bench/late_joiner.py orchestrates):
//
//   --mode fill  --room R --updates N [--rate U]   one writer makes N separate updates (one
//       transaction each, U per second), then waits until a second client holds all of them.
//       Each inserts one character at a scattered position: appends by one client would merge
//       into a single Yjs item and make the document trivially small; scattered inserts keep
//       N items, closer to a long-edited page.
//   --mode join  --room R --repeat K [--hold]      K fresh clients join one after another; each
//       join is timed from connect() to 'sync' with the whole text present. --hold keeps one
//       client connected throughout, so the room stays loaded on the server (a warm join).
//   --mode churn --rooms a,b,… | --rooms-file F  --cycles C [--concurrency P]   C cycles of: connect, sync, one edit,
//       disconnect, spread over the rooms, so the server loads and unloads rooms C times.
//
// Common: --url WS_BASE [--token JWT] [--timeout S]. Output: one JSON line {"event": "result", …}.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import * as Y from 'yjs'
import { connectSynced, jsonStdout, makeProvider } from './yclient.mjs'

const emit = jsonStdout()
const { values: opts } = parseArgs({
  options: {
    mode: { type: 'string' },
    url: { type: 'string' },
    token: { type: 'string' },
    room: { type: 'string' },
    rooms: { type: 'string' },
    // Thousands of room names do not fit a command line: one per line in a file.
    'rooms-file': { type: 'string' },
    updates: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '1000' },
    repeat: { type: 'string', default: '5' },
    hold: { type: 'boolean', default: false },
    cycles: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '120' }
  }
})
const TIMEOUT_MS = Number(opts.timeout) * 1000
const TEXT_KEY = 'text'
// Updates the writer makes per timer tick while filling: small enough to stay a steady stream.
const FILL_TICK_MS = 10
// A prime stride spreads inserts over the whole text without a random generator (reproducible).
const SCATTER_STRIDE = 7919
const CLIENT_WARMUP_ROUNDS = 5

const client = async (room) => {
  const doc = new Y.Doc()
  const provider = makeProvider(opts.url, room, doc, opts.token)
  if (!(await connectSynced(provider, TIMEOUT_MS))) {
    provider.destroy()
    throw new Error(`client for ${room} did not sync within ${opts.timeout}s`)
  }
  return { doc, provider }
}

/** Resolve when `predicate()` holds, checking on every doc update, or reject at the deadline. */
const until = (doc, predicate, what) => new Promise((resolve, reject) => {
  if (predicate()) return resolve()
  const timer = setTimeout(() => {
    doc.off('update', check)
    reject(new Error(`timed out waiting for ${what}`))
  }, TIMEOUT_MS)
  const check = () => {
    if (!predicate()) return
    clearTimeout(timer)
    doc.off('update', check)
    resolve()
  }
  doc.on('update', check)
})

const fill = async () => {
  const total = Number(opts.updates)
  const perTick = Math.max(1, Math.round((Number(opts.rate) * FILL_TICK_MS) / 1000))
  const writer = await client(opts.room)
  const observer = await client(opts.room)
  const text = writer.doc.getText(TEXT_KEY)
  const start = performance.now()
  for (let made = 0; made < total;) {
    for (let i = 0; i < perTick && made < total; i++, made++) {
      text.insert((made * SCATTER_STRIDE) % (text.length + 1), 'x')
    }
    await new Promise((resolve) => setTimeout(resolve, FILL_TICK_MS))
  }
  const clock = Y.getState(writer.doc.store, writer.doc.clientID)
  await until(observer.doc, () => Y.getState(observer.doc.store, writer.doc.clientID) >= clock, 'the observer to hold every update')
  const fillMs = performance.now() - start
  writer.provider.destroy()
  observer.provider.destroy()
  return { updates: total, length: text.length, fill_ms: Math.round(fillMs) }
}

/**
 * Exercise the code a join runs (decode and apply a large update) on local docs first, so a join
 * timed in a fresh Node process measures the server, not this process's JIT warm-up.
 */
const warmUpClient = (items) => {
  const source = new Y.Doc()
  const text = source.getText(TEXT_KEY)
  for (let i = 0; i < items; i++) text.insert((i * SCATTER_STRIDE) % (text.length + 1), 'x')
  const update = Y.encodeStateAsUpdate(source)
  for (let round = 0; round < CLIENT_WARMUP_ROUNDS; round++) Y.applyUpdate(new Y.Doc(), update)
}

const join = async () => {
  warmUpClient(Number(opts.updates))
  const holder = opts.hold ? await client(opts.room) : null
  const expected = Number(opts.updates)
  const times = []
  for (let i = 0; i < Number(opts.repeat); i++) {
    const start = performance.now()
    const joiner = await client(opts.room)
    const text = joiner.doc.getText(TEXT_KEY)
    await until(joiner.doc, () => text.length >= expected, `${expected} characters`)
    times.push(Number((performance.now() - start).toFixed(2)))
    joiner.provider.destroy()
  }
  holder?.provider.destroy()
  const sorted = [...times].sort((a, b) => a - b)
  return { join_ms: times, median_ms: sorted[Math.floor(sorted.length / 2)] }
}

const churn = async () => {
  const rooms = opts['rooms-file']
    ? readFileSync(opts['rooms-file'], 'utf8').split('\n').filter(Boolean)
    : opts.rooms.split(',')
  const cycles = Number(opts.cycles)
  let next = 0
  let failures = 0
  const worker = async () => {
    while (next < cycles) {
      const room = rooms[next++ % rooms.length]
      try {
        const { doc, provider } = await client(room)
        doc.getText(TEXT_KEY).insert(0, 'c')
        provider.destroy()
      } catch (err) {
        failures += 1
        console.error(String(err))
      }
    }
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: Number(opts.concurrency) }, worker))
  return { cycles, failures, churn_ms: Math.round(performance.now() - start) }
}

const MODES = { fill, join, churn }

const main = async () => {
  const run = MODES[opts.mode]
  if (!run || !opts.url) throw new Error('usage: late_joiner.mjs --mode fill|join|churn --url WS_BASE …')
  emit({ event: 'result', mode: opts.mode, ...(await run()) })
  setTimeout(() => process.exit(0), 50)
}

main().catch((err) => {
  emit({ event: 'fatal', message: String(err?.stack || err) })
  process.exit(1)
})
