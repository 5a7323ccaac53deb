// Shared pieces of the benchmark's Node drivers: a stock y-websocket client and a sync wait.

import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

/** A WebsocketProvider exactly as an app would create it (no BroadcastChannel: one process). */
export const makeProvider = (url, room, doc, token) => new WebsocketProvider(url, room, doc, {
  WebSocketPolyfill: WebSocket,
  params: token ? { token } : {},
  connect: false,
  disableBc: true
})

/** Connect and resolve true on the first 'sync' (the server's SyncStep2 applied), false on timeout. */
export const connectSynced = (provider, timeoutMs) => new Promise((resolve) => {
  const onSync = (synced) => {
    if (!synced) return
    clearTimeout(timer)
    provider.off('sync', onSync)
    resolve(true)
  }
  const timer = setTimeout(() => {
    provider.off('sync', onSync)
    resolve(false)
  }, timeoutMs)
  provider.on('sync', onSync)
  provider.connect()
})

/** Drivers talk JSON lines on stdout; library logging must not corrupt it. */
export const jsonStdout = () => {
  console.log = (...args) => console.error(...args)
  // Every provider registers a process 'exit' listener; hundreds are normal here.
  process.setMaxListeners(0)
  return (message) => process.stdout.write(JSON.stringify(message) + '\n')
}
