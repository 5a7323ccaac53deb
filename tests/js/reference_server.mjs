#!/usr/bin/env node
// The reference y-websocket server (@y/websocket-server), started the way its own bin does
// (src/server.js: ws noServer + setupWSConnection on 'upgrade'), but listening on PORT (default 0 =
// a free port chosen by the OS) and announcing the real port as one JSON line on stdout:
//
//   {"event": "listening", "host": "127.0.0.1", "port": 40123}
//
// Any URL path is a room: /ws/documents/<doc_id> maps to the room "ws/documents/<doc_id>", so the
// same client URLs work against this server and ours. Used by tests/test_yjs_harness.py to prove
// the harness without our server, and by the benchmarks as the baseline.

import http from 'node:http'
import { createRequire } from 'node:module'
import { setupWSConnection } from '@y/websocket-server/utils'

// The exact `ws` the reference server's own bin uses (its pinned dependency, not our ws@8).
const WebSocket = createRequire(import.meta.resolve('@y/websocket-server/utils'))('ws')

const host = process.env.HOST || '127.0.0.1'
const port = Number.parseInt(process.env.PORT || '0', 10)

const wss = new WebSocket.Server({ noServer: true })
wss.on('connection', setupWSConnection)

const server = http.createServer((_request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/plain' })
  response.end('okay')
})
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(port, host, () => {
  const address = server.address()
  process.stdout.write(JSON.stringify({ event: 'listening', host, port: address.port }) + '\n')
})

// server.close() alone would wait for the upgraded sockets forever: drop them (clients see 1006,
// like a crashed server) and exit now.
const shutdown = () => {
  for (const ws of wss.clients) ws.terminate()
  server.close()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
// Exit with the parent: the test runner closes our stdin when it goes away.
process.stdin.on('end', shutdown)
process.stdin.resume()
