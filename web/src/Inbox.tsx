// The inbox button: unread count live from /ws/inbox (resumed with `since` after a reconnect),
// the list from GET /notifications/ when opened.
import { useEffect, useRef, useState } from 'react'
import { api } from './api'
import { openLiveSocket, type SocketState } from './liveSocket'
import { navigate } from './router'
import { ErrorText, Status, useAction, useLoad } from './ui'

type Notification = {
  id: string, kind: string, workspace_id: string | null, document_id: string | null, board_id: string | null,
  data: Record<string, any>, created_at: string, read_at: string | null
}
type Group = { group_key: string, count: number, unread_count: number, actor_ids: string[], latest: Notification }

const DESCRIBE: Record<string, (n: Notification) => string> = {
  'comment.mention': (n) => `You were mentioned in a comment${n.data.title ? ` on “${n.data.title}”` : ''}${n.data.excerpt ? `: ${n.data.excerpt}` : ''}`,
  'document.mention': (n) => `You were mentioned in “${n.data.title ?? 'a page'}”`,
  'thread.reply': (n) => `New reply in a thread${n.data.title ? ` on “${n.data.title}”` : ''}`,
  'thread.resolved': () => 'A thread you are in was resolved',
  'card.assigned': (n) => `You were assigned “${n.data.title ?? 'a card'}”${n.data.board_name ? ` on ${n.data.board_name}` : ''}`,
  'workspace.invited': (n) => `You were invited to ${n.data.workspace_name ?? 'a workspace'}`,
  'access.granted': (n) => `You were given access to “${n.data.title ?? n.data.name ?? 'an item'}”`,
  'export.ready': () => 'Your export is ready'
}
const describe = (n: Notification) => (DESCRIBE[n.kind] ?? ((x: Notification) => x.kind))(n)

export function InboxButton () {
  const [unread, setUnread] = useState<number | null>(null)
  const [open, setOpen] = useState(false)
  const [state, setState] = useState<SocketState>('connecting')
  const seq = useRef<number | null>(null)
  useEffect(() => openLiveSocket({
    path: () => `/ws/inbox${seq.current === null ? '' : `?since=${seq.current}`}`,
    onState: setState,
    onFrame: (frame) => {
      if (frame.type === 'ready') {
        setUnread(frame.unread_count)
        seq.current = Math.max(seq.current ?? 0, frame.seq)
        setState('live')
      } else if (frame.type === 'event' && (seq.current === null || frame.seq > seq.current)) {
        seq.current = frame.seq
        setUnread(frame.event.unread_count)
      } else if (frame.type === 'unread') {
        setUnread(frame.unread_count) // the server's recount after events committed together
      }
    }
  }).close, [])
  const label = unread ? `Inbox, ${unread} unread` : 'Inbox'
  return (
    <div className='inbox'>
      <button type='button' className='ghost' aria-label={label} aria-expanded={open} onClick={() => setOpen(!open)}
        data-testid='inbox-button' data-state={state}>
        Inbox {unread ? <span className='count-badge' data-testid='inbox-badge'>{unread}</span> : null}
      </button>
      {open && <InboxList onClose={() => setOpen(false)} onCount={setUnread} />}
    </div>
  )
}

function InboxList ({ onClose, onCount }: { onClose: () => void, onCount: (n: number) => void }) {
  const groups = useLoad(() => api<{ items: Group[] }>('GET', '/api/v1/notifications/?limit=20').then((p) => p.items), [])
  const action = useAction()
  const readAll = async () => {
    const result = await action.run(() => api<{ unread_count: number }>('POST', '/api/v1/notifications/read/', { all: true }))
    if (result) { onCount(result.unread_count); groups.reload() }
  }
  const openItem = (n: Notification) => {
    void api<{ unread_count: number }>('POST', `/api/v1/notifications/${n.id}/read/`).then((r) => onCount(r.unread_count), () => undefined)
    if (n.workspace_id && n.document_id) navigate({ workspace: n.workspace_id, document: n.document_id })
    else if (n.workspace_id && n.board_id) navigate({ workspace: n.workspace_id, board: n.board_id })
    onClose()
  }
  return (
    <div className='inbox-panel card' role='dialog' aria-label='Inbox' onKeyDown={(e) => { if (e.key === 'Escape') onClose() }}>
      <div className='panel-head'><h3>Inbox</h3><button type='button' onClick={() => void readAll()} disabled={action.busy}>Mark all read</button></div>
      <ErrorText error={action.error} />
      <Status state={groups} what='your inbox'>
        {(items) => (
          <ul className='inbox-items'>
            {items.length === 0 && <li className='muted'>Nothing here yet.</li>}
            {items.map((g) => (
              <li key={g.group_key}>
                <button type='button' className={g.unread_count ? 'inbox-item unread' : 'inbox-item'} onClick={() => openItem(g.latest)}>
                  <span>{describe(g.latest)}{g.count > 1 ? ` (${g.count})` : ''}</span>
                  <span className='muted'>{new Date(g.latest.created_at).toLocaleString()}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Status>
    </div>
  )
}
