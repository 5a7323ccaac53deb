#!/usr/bin/env node
// Load driver for the WebSocket benchmark: N rooms × M stock Yjs clients (y-websocket
// WebsocketProvider + Y.Doc) in this one Node process, one writer per room typing at a fixed rate.
//
//   node bench/ws_bench.mjs --url ws://127.0.0.1:8000/ws/documents --rooms id1,id2 --clients 10 \
//        --rate 20 --warmup 3 --duration 20 [--token JWT]
//
// stdout carries JSON lines only (library logging goes to stderr):
//   {"event": "phase", "phase": "connected" | "measure_start" | "measure_end" | "drained", "t_ms": …}
//   {"event": "result", …}   (last line; see `result()` below for the fields)
// The parent (bench/run.py) samples the servers' CPU from /proc when it reads "measure_start" and
// "drained", so the CPU window is exactly the measured edits plus their delivery.
//
// Latency: every edit appends a small marker to the room's Y.Text. Yjs numbers a client's items by
// clock, so the writer records (clock after the edit, send time) and each peer, on the doc's
// 'update' event, reads the writer's clock in its own state (Y.getState) and closes every edit up
// to it: one lookup per update, exact even when the server merges several edits into one frame.
// Writer and peers share this process's monotonic clock (performance.now()).

import { parseArgs } from 'node:util'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import * as Y from 'yjs'
import { connectSynced, jsonStdout, makeProvider } from './yclient.mjs'

const emit = jsonStdout()

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    rooms: { type: 'string' },
    clients: { type: 'string', default: '10' },
    rate: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    duration: { type: 'string', default: '20' },
    token: { type: 'string' },
    // Connections opened at once: a server checks a token and loads a room per connection.
    'connect-concurrency': { type: 'string', default: '50' },
    'connect-timeout': { type: 'string', default: '60' },
    // After the writers stop, how long undelivered edits may still arrive before they count as lost.
    'drain-timeout': { type: 'string', default: '10' }
  }
})

const URL_BASE = opts.url
const ROOMS = (opts.rooms || '').split(',').filter(Boolean)
const CLIENTS_PER_ROOM = Number(opts.clients)
const EDITS_PER_S = Number(opts.rate)
const WARMUP_MS = Number(opts.warmup) * 1000
const MEASURE_MS = Number(opts.duration) * 1000
const CONNECT_CONCURRENCY = Number(opts['connect-concurrency'])
const CONNECT_TIMEOUT_MS = Number(opts['connect-timeout']) * 1000
const DRAIN_TIMEOUT_MS = Number(opts['drain-timeout']) * 1000
const TEXT_KEY = 'text'
// Sampling period of the client's event-loop lag monitor; its readings include this period.
const LOOP_DELAY_RESOLUTION_MS = 10
// Errors and closes are logged with detail up to this many, then only counted.
const MAX_LOGGED_ERRORS = 20

if (!URL_BASE || ROOMS.length === 0 || CLIENTS_PER_ROOM < 2) {
  console.error('usage: ws_bench.mjs --url WS_BASE --rooms a,b,... --clients M (≥ 2) [--rate --warmup --duration --token]')
  process.exit(2)
}

const now = () => performance.now()
const t0 = now()
const phase = (name, extra = {}) => emit({ event: 'phase', phase: name, t_ms: Math.round(now() - t0), ...extra })

const errors = { connect_failures: 0, connection_errors: 0, unexpected_closes: 0, samples: [] }
const noteError = (kind, detail) => {
  errors[kind] += 1
  if (errors.samples.length < MAX_LOGGED_ERRORS) errors.samples.push({ kind, ...detail })
}

/** Latency samples (ms) of measured edits, appended by every peer; sorted once at the end. */
let latencies = new Float64Array(1 << 16)
let latencyCount = 0
/** Per measured second (by send time): the slowest delivery and how many took over 50 ms, so a
 * tail can be placed in time (periodic server work, a stall) rather than only counted. */
const slowBySecond = new Map()
let measureStartedAt = 0
const SLOW_MS = 50
const recordLatency = (ms, sentAt) => {
  const second = Math.floor((sentAt - measureStartedAt) / 1000)
  const slot = slowBySecond.get(second) || { s: second, max_ms: 0, over_50ms: 0 }
  slot.max_ms = Math.max(slot.max_ms, Number(ms.toFixed(1)))
  if (ms > SLOW_MS) slot.over_50ms += 1
  slowBySecond.set(second, slot)
  if (latencyCount === latencies.length) {
    const grown = new Float64Array(latencies.length * 2)
    grown.set(latencies)
    latencies = grown
  }
  latencies[latencyCount++] = ms
}

let measuring = false
let stopping = false

class Room {
  constructor (name) {
    this.name = name
    /** Writer's edits in order: clock after the edit, send time, measured or warm-up. */
    this.editClock = []
    this.editTime = []
    this.editMeasured = []
    this.measuredEdits = 0
    this.writer = null
    this.peers = []
    this.seq = 0
  }

  /** One edit by the writer: append a marker; its clock is the writer's new state. */
  edit () {
    const doc = this.writer.doc
    const text = doc.getText(TEXT_KEY)
    const sentAt = now()
    this.seq += 1
    text.insert(text.length, `${this.seq};`)
    this.editClock.push(Y.getState(doc.store, doc.clientID))
    this.editTime.push(sentAt)
    this.editMeasured.push(measuring)
    if (measuring) this.measuredEdits += 1
  }

  /** Deliveries still owed to peers for edits made so far. */
  pending () {
    let owed = 0
    for (const peer of this.peers) owed += this.editClock.length - peer.nextEdit
    return owed
  }
}

class Client {
  constructor (room, isWriter) {
    this.room = room
    this.doc = new Y.Doc()
    this.synced = false
    this.nextEdit = 0
    this.delivered = 0
    this.frames = 0 // updates applied that carried at least one measured edit
    this.provider = makeProvider(URL_BASE, room.name, this.doc, opts.token)
    this.provider.on('connection-error', (event) => {
      noteError('connection_errors', { room: room.name, message: String(event?.message || event?.type || event) })
    })
    this.provider.on('connection-close', (event) => {
      if (!stopping && this.synced) {
        noteError('unexpected_closes', { room: room.name, code: event?.code ?? null, reason: event?.reason ?? '' })
      }
    })
    if (!isWriter) this.doc.on('update', () => this.onUpdate())
  }

  /** A peer saw an update: every writer edit up to the writer's clock in our state has arrived. */
  onUpdate () {
    const room = this.room
    if (room.writer === null) return
    const clock = Y.getState(this.doc.store, room.writer.doc.clientID)
    const receivedAt = now()
    const before = this.delivered
    while (this.nextEdit < room.editClock.length && room.editClock[this.nextEdit] <= clock) {
      if (room.editMeasured[this.nextEdit]) {
        recordLatency(receivedAt - room.editTime[this.nextEdit], room.editTime[this.nextEdit])
        this.delivered += 1
      }
      this.nextEdit += 1
    }
    // A frame that carried several edits: the server coalesced them.
    if (this.delivered > before) this.frames += 1
  }

  async connect () {
    this.synced = await connectSynced(this.provider, CONNECT_TIMEOUT_MS)
    if (!this.synced) {
      noteError('connect_failures', { room: this.room.name, message: 'not synced within connect timeout' })
    }
    return this.synced
  }
}

const rooms = ROOMS.map((name) => new Room(name))
const clients = []
for (const room of rooms) {
  room.writer = new Client(room, true)
  clients.push(room.writer)
  for (let i = 1; i < CLIENTS_PER_ROOM; i++) {
    const peer = new Client(room, false)
    room.peers.push(peer)
    clients.push(peer)
  }
}

/** Open connections CONNECT_CONCURRENCY at a time; resolves with the number that synced. */
const connectAll = async () => {
  let next = 0
  let ok = 0
  const worker = async () => {
    while (next < clients.length) {
      const client = clients[next++]
      if (await client.connect()) ok += 1
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, clients.length) }, worker))
  return ok
}

/**
 * Each writer edits every 1/rate s on an absolute schedule (no drift), the rooms staggered evenly
 * over one period so the server sees a steady stream rather than bursts of N edits.
 */
const runWriters = (untilMs) => new Promise((resolve) => {
  const start = now()
  // --rate 0: nobody writes; the window measures what idle connections cost.
  if (EDITS_PER_S === 0) return setTimeout(resolve, Math.max(0, untilMs - start))
  const periodMs = 1000 / EDITS_PER_S
  let running = rooms.length
  rooms.forEach((room, index) => {
    let due = start + (periodMs * index) / rooms.length
    // Wake at the next edit or at the end, whichever is first (a slow rate must not overrun).
    const wake = () => setTimeout(tick, Math.max(0, Math.min(due, untilMs) - now()))
    const tick = () => {
      if (now() >= untilMs) {
        running -= 1
        if (running === 0) resolve()
        return
      }
      room.edit()
      due += periodMs
      wake()
    }
    wake()
  })
})

const waitDrained = () => new Promise((resolve) => {
  const deadline = now() + DRAIN_TIMEOUT_MS
  const check = () => {
    const owed = rooms.reduce((sum, room) => sum + room.pending(), 0)
    if (owed === 0 || now() >= deadline) return resolve(owed)
    setTimeout(check, 5)
  }
  check()
})

/** Event-loop lag beyond the monitor's own timer period, in ms (a busy client inflates latency). */
const loopLag = (nanoseconds) => Number(Math.max(0, nanoseconds / 1e6 - LOOP_DELAY_RESOLUTION_MS).toFixed(3))

const percentile = (sorted, count, p) => {
  if (count === 0) return null
  const index = Math.min(count - 1, Math.ceil((p / 100) * count) - 1)
  return Number(sorted[Math.max(0, index)].toFixed(3))
}

const latencySummary = () => {
  const sorted = latencies.subarray(0, latencyCount).sort()
  let sum = 0
  for (let i = 0; i < latencyCount; i++) sum += sorted[i]
  return {
    samples: latencyCount,
    mean_ms: latencyCount ? Number((sum / latencyCount).toFixed(3)) : null,
    p50_ms: percentile(sorted, latencyCount, 50),
    p95_ms: percentile(sorted, latencyCount, 95),
    p99_ms: percentile(sorted, latencyCount, 99),
    max_ms: latencyCount ? Number(sorted[latencyCount - 1].toFixed(3)) : null,
    by_second: [...slowBySecond.values()].sort((a, b) => a.s - b.s)
  }
}

/** Rooms whose peers do not all hold the writer's final text (a lost or misapplied update). */
const divergedRooms = () => rooms.filter((room) => {
  const expected = room.writer.doc.getText(TEXT_KEY).toString()
  return room.peers.some((peer) => peer.synced && peer.doc.getText(TEXT_KEY).toString() !== expected)
}).map((room) => room.name)

const main = async () => {
  const connectStart = now()
  const connected = await connectAll()
  const connectMs = now() - connectStart
  phase('connected', { connected, clients: clients.length, connect_ms: Math.round(connectMs) })

  await runWriters(now() + WARMUP_MS)
  // Let warm-up edits settle so the measured window starts from a quiet, fully synced state.
  await waitDrained()

  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS })
  loopDelay.enable()
  const cpuBefore = process.cpuUsage()
  measuring = true
  const measureStart = now()
  measureStartedAt = measureStart
  const measureStartUnixMs = Date.now()
  phase('measure_start')
  await runWriters(measureStart + MEASURE_MS)
  measuring = false
  const sendEnd = now()
  phase('measure_end')
  const undelivered = await waitDrained()
  const drainedAt = now()
  phase('drained', { undelivered })
  const cpu = process.cpuUsage(cpuBefore)
  loopDelay.disable()

  stopping = true
  const measuredEdits = rooms.reduce((sum, room) => sum + room.measuredEdits, 0)
  const deliveries = clients.reduce((sum, client) => sum + client.delivered, 0)
  const frames = clients.reduce((sum, client) => sum + client.frames, 0)
  const windowS = (drainedAt - measureStart) / 1000
  emit({
    event: 'result',
    rooms: rooms.length,
    clients_per_room: CLIENTS_PER_ROOM,
    rate_per_writer: EDITS_PER_S,
    warmup_s: WARMUP_MS / 1000,
    measured_s: Number(((sendEnd - measureStart) / 1000).toFixed(3)),
    window_s: Number(windowS.toFixed(3)),
    measure_start_unix_ms: measureStartUnixMs, // to line latency.by_second up with server-side logs
    connected,
    connect_ms: Math.round(connectMs),
    edits: measuredEdits,
    expected_deliveries: measuredEdits * (CLIENTS_PER_ROOM - 1),
    deliveries,
    edits_per_frame: frames ? Number((deliveries / frames).toFixed(3)) : null,
    undelivered,
    diverged_rooms: divergedRooms(),
    latency: latencySummary(),
    client: {
      cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(3)),
      cpu_share: Number(((cpu.user + cpu.system) / 1e6 / windowS).toFixed(3)),
      loop_lag_p99_ms: loopLag(loopDelay.percentile(99)),
      loop_lag_max_ms: loopLag(loopDelay.max)
    },
    errors
  })
  for (const client of clients) client.provider.destroy()
  // Providers' timers and sockets would keep the process alive a while; the result is out.
  setTimeout(() => process.exit(0), 50)
}

main().catch((err) => {
  console.error(err)
  emit({ event: 'fatal', message: String(err?.stack || err) })
  process.exit(1)
})
