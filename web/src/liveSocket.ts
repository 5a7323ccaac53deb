// The JSON sockets (board, inbox): token as the `collab` subprotocol, reconnect with a capped
// backoff from where the client got to (`since`), and the close codes of README "Close codes":
// 4401 → refresh once and reconnect (a failed refresh ends the session: the app shows the
// sign-in screen); 4403/4404 → final, shown to the person; anything else → reconnect.
import { onSession, refreshSession, session, wsBase } from './api'

export type SocketState = 'connecting' | 'live' | 'reconnecting' | 'forbidden' | 'gone'

export type LiveSocketOptions = {
  /** Path and query of the next connection (called on every (re)connect, so it can carry `since`). */
  path: () => string
  onFrame: (frame: any) => void
  onState: (state: SocketState) => void
}

const MAX_BACKOFF_MS = 5000

export type LiveSocket = {
  /** Send a JSON frame now if connected (presence is re-sent by the caller's state anyway). */
  send: (frame: unknown) => void
  /** Close for good. */
  close: () => void
}

export function openLiveSocket ({ path, onFrame, onState }: LiveSocketOptions): LiveSocket {
  let ws: WebSocket | null = null
  let stopped = false
  let attempts = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const open = () => {
    const token = session()?.access
    if (!token || stopped) return
    ws = new WebSocket(`${wsBase()}${path()}`, ['collab', token])
    ws.onopen = () => { attempts = 0 }
    ws.onmessage = (message) => onFrame(JSON.parse(message.data))
    ws.onclose = (event) => {
      ws = null
      if (stopped) return
      if (event.code === 4401) {
        refreshSession().then(open, () => { /* the session ended */ })
      } else if (event.code === 4403) {
        onState('forbidden')
      } else if (event.code === 4404) {
        onState('gone')
      } else {
        onState('reconnecting')
        timer = setTimeout(open, Math.min(200 * 2 ** attempts++, MAX_BACKOFF_MS))
      }
    }
  }
  onState('connecting')
  open()
  const stopSession = onSession((next, reason) => { if (!next && reason !== 'refreshed') ws?.close() })
  return {
    send: (frame) => { if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame)) },
    close: () => {
      stopped = true
      clearTimeout(timer)
      stopSession()
      ws?.close()
    }
  }
}
