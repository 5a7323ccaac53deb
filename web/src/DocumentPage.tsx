// A document: title, who is here, the live BlockNote editor and its version history.
//
// The editor is bound to the document socket by the stock y-websocket provider; the access token
// travels as a WebSocket subprotocol (`collab, <jwt>`), never in the URL. The provider stops on a
// 44xx close (README "Close codes"): 4401 means the token expired or the session was revoked, so
// we refresh once and reconnect, and a failed refresh ends the session (the revoked state).
import { useEffect, useState } from 'react'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { BlockNoteView } from '@blocknote/mantine'
import { useCreateBlockNote } from '@blocknote/react'
import { withCollaboration } from '@blocknote/core/yjs'
import { api, onSession, refreshSession, userColor, wsBase, type Session } from './api'
import type { BlockNoteEditor } from '@blocknote/core'
import { CommentsPanel } from './Comments'
import { pagesChanged, type DocHeader, type Workspace } from './Shell'
import { Avatar, ErrorText, Status, useAction, useLoad } from './ui'

type Doc = DocHeader & { fragment: string | null, version: number }

/** The page and the caller's role on it (the page GET has no role; the list it belongs to
 * does): viewers and commenters get a read-only editor instead of edits the server refuses. */
async function loadDocument (workspaceId: string, docId: string): Promise<Doc> {
  const doc = await api<Doc>('GET', `/api/v1/documents/${docId}/`)
  const scope = doc.parent_id ? `parent_id=${doc.parent_id}` : doc.board_id ? `board_id=${doc.board_id}` : 'top_level=true'
  let offset: number | null = 0
  while (offset !== null) {
    const page: { items: DocHeader[], next_offset: number | null } = await api('GET', `/api/v1/documents/?workspace_id=${workspaceId}&${scope}&limit=100&offset=${offset}`)
    const mine = page.items.find((d) => d.id === docId)
    if (mine) return { ...doc, my_role: mine.my_role }
    offset = page.next_offset
  }
  return doc
}

const canEdit = (doc: Doc) => !doc.my_role || doc.my_role === 'editor' || doc.my_role === 'manager'
type Connection = 'connecting' | 'connected' | 'reconnecting' | 'forbidden' | 'gone'
type Peer = { clientId: number, name: string, color: string, self: boolean }
type Panel = 'history' | 'comments' | null
type AnyEditor = BlockNoteEditor<any, any, any>

export function DocumentPage ({ workspace, docId, session }: { workspace: Workspace, docId: string, session: Session }) {
  const doc = useLoad(() => loadDocument(workspace.id, docId), [workspace.id, docId])
  const [panel, setPanel] = useState<Panel>(null)
  const [editor, setEditor] = useState<AnyEditor | null>(null)
  const [commentsSeen, setCommentsSeen] = useState(0)
  const toggle = (which: Panel) => setPanel(panel === which ? null : which)
  return (
    <Status state={doc} what='the page'>
      {(data) => (
        <div className={`document ${panel ? 'with-panel' : ''}`}>
          <Live doc={data} session={session} panel={panel} onPanel={toggle} onEditor={setEditor} onCommentEvent={() => setCommentsSeen((n) => n + 1)} onRenamed={(title) => doc.set({ ...data, title })} />
          {panel === 'history' && <VersionPanel docId={docId} onClose={() => setPanel(null)} />}
          {panel === 'comments' && <CommentsPanel docId={docId} workspaceId={workspace.id} editor={editor} changes={commentsSeen} onClose={() => setPanel(null)} />}
        </div>
      )}
    </Status>
  )
}

function Live ({ doc, session, panel, onPanel, onEditor, onCommentEvent, onRenamed }: { doc: Doc, session: Session, panel: Panel, onPanel: (which: Panel) => void, onEditor: (editor: AnyEditor) => void, onCommentEvent: () => void, onRenamed: (title: string) => void }) {
  const [live, setLive] = useState<{ ydoc: Y.Doc, provider: WebsocketProvider } | null>(null)
  const [connection, setConnection] = useState<Connection>('connecting')
  const [peers, setPeers] = useState<Peer[]>([])

  useEffect(() => {
    const ydoc = new Y.Doc()
    let eventsSeq: number | null = null
    const onCommentFrame = (frame: any) => {
      if (frame.type === 'events') { // the position after (re)connecting; `refetch`: reload
        eventsSeq = frame.seq
        if (frame.refetch) onCommentEvent()
      } else if (frame.type === 'event' && (eventsSeq === null || frame.seq > eventsSeq)) {
        eventsSeq = frame.seq
        onCommentEvent()
      }
      if (eventsSeq !== null) provider.params.events_since = String(eventsSeq)
    }
    const provider = new WebsocketProvider(`${wsBase()}/ws/documents`, doc.id, ydoc, {
      protocols: ['collab', session.access],
      params: { events: 'true' }, // comment events as text frames, beside y-websocket's binary ones
      WebSocketPolyfill: textFramesTo(onCommentFrame),
      disableBc: true // every window is a real client of the server, as in production
    })
    let everConnected = false
    provider.on('status', ({ status }) => {
      if (status === 'connected') everConnected = true
      setConnection((prev) => (prev === 'forbidden' || prev === 'gone')
        ? prev
        : status === 'connected' ? 'connected' : everConnected ? 'reconnecting' : 'connecting')
    })
    provider.on('closed', ({ code }) => {
      if (code === 4401) {
        refreshSession().then((fresh) => {
          provider.protocols = ['collab', fresh.access]
          provider.connect()
        }, () => { /* the session ended: the app shows the sign-in screen with the reason */ })
      } else if (code === 4403) setConnection('forbidden')
      else if (code === 4404) setConnection('gone')
    })
    const stopSession = onSession((next) => { if (next) provider.protocols = ['collab', next.access] })
    const updatePeers = () => {
      const list: Peer[] = []
      provider.awareness.getStates().forEach((state, clientId) => {
        if (state.user?.name) list.push({ clientId, name: state.user.name, color: state.user.color, self: clientId === ydoc.clientID })
      })
      setPeers(list)
    }
    provider.awareness.on('change', updatePeers)
    setLive({ ydoc, provider })
    return () => {
      stopSession()
      provider.awareness.off('change', updatePeers)
      provider.destroy()
      ydoc.destroy()
    }
  }, [doc.id]) // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <section className='doc-main'>
      <div className='doc-header'>
        <Title doc={doc} onRenamed={onRenamed} />
        <div className='presence' aria-label='People on this page' data-testid='presence'>
          {peers.map((p) => <Avatar key={p.clientId} id={String(p.clientId)} name={p.name} color={p.color} title={p.self ? `${p.name} (you)` : p.name} />)}
        </div>
        <ConnectionBadge state={connection} />
        <button type='button' className={panel === 'comments' ? 'primary' : ''} aria-pressed={panel === 'comments'} onClick={() => onPanel('comments')}>Comments</button>
        <button type='button' className={panel === 'history' ? 'primary' : ''} aria-pressed={panel === 'history'} onClick={() => onPanel('history')}>History</button>
      </div>
      {connection === 'forbidden' && <p className='error' role='alert' data-testid='access-lost'>You no longer have access to this page.</p>}
      {connection === 'gone' && <p className='error' role='alert'>This page was deleted.</p>}
      {!canEdit(doc) && <p className='notice' role='status' data-testid='read-only'>You can view this page{doc.my_role === 'commenter' ? ' and comment on it' : ''}, but not edit it.</p>}
      {live && <Editor key={doc.id} ydoc={live.ydoc} provider={live.provider} fragment={doc.fragment ?? 'prosemirror'} session={session} onEditor={onEditor} editable={canEdit(doc)} />}
    </section>
  )
}

/** A WebSocket class for the provider that hands text frames (the server's JSON comment events)
 * to `onText` and passes binary frames (y-websocket's protocol) to the provider. */
function textFramesTo (onText: (frame: unknown) => void): typeof WebSocket {
  return class extends WebSocket {
    get onmessage () { return super.onmessage }
    set onmessage (handler: ((event: MessageEvent) => void) | null) {
      super.onmessage = handler && ((event: MessageEvent) => {
        if (typeof event.data === 'string') onText(JSON.parse(event.data))
        else handler.call(this, event)
      })
    }
  }
}

function ConnectionBadge ({ state }: { state: Connection }) {
  const text = { connecting: 'Connecting…', connected: 'Live', reconnecting: 'Reconnecting… (edits are kept and sent when back)', forbidden: 'No access', gone: 'Deleted' }[state]
  return <span className={`badge conn-${state}`} role='status' data-testid='connection' data-state={state}>{text}</span>
}

function Editor ({ ydoc, provider, fragment, session, onEditor, editable }: { ydoc: Y.Doc, provider: WebsocketProvider, fragment: string, session: Session, onEditor: (editor: AnyEditor) => void, editable: boolean }) {
  const editor = useCreateBlockNote(withCollaboration({
    collaboration: {
      provider,
      fragment: ydoc.getXmlFragment(fragment),
      user: { name: session.user.display_name, color: userColor(session.user.id) },
      showCursorLabels: 'always'
    }
  }), [provider])
  useEffect(() => onEditor(editor), [editor, onEditor])
  return <div className='editor' data-testid='editor'><BlockNoteView editor={editor} editable={editable} theme='light' /></div>
}

function Title ({ doc, onRenamed }: { doc: Doc, onRenamed: (title: string) => void }) {
  const [title, setTitle] = useState(doc.title)
  const action = useAction()
  useEffect(() => setTitle(doc.title), [doc.title])
  const save = async () => {
    if (title === doc.title) return
    const saved = await action.run(() => api<Doc>('PATCH', `/api/v1/documents/${doc.id}/`, { title }))
    if (saved) { onRenamed(saved.title); pagesChanged() }
  }
  return (
    <div className='title'>
      <input aria-label='Page title' value={title} placeholder='Untitled' onChange={(e) => setTitle(e.target.value)}
        onBlur={() => void save()} onKeyDown={(e) => { if (e.key === 'Enter') (e.target as HTMLInputElement).blur() }} />
      <ErrorText error={action.error} />
    </div>
  )
}

type Version = { id: string, seq: number, kind: string, name: string | null, created_at: string }
type VersionDetail = Version & { content: { blocks: any[] }, authors: { user_id: string, display_name: string | null }[] }

function VersionPanel ({ docId, onClose }: { docId: string, onClose: () => void }) {
  const versions = useLoad(() => api<{ items: Version[] }>('GET', `/api/v1/documents/${docId}/versions/?limit=50`).then((p) => p.items), [docId])
  const [selected, setSelected] = useState<string | null>(null)
  const [name, setName] = useState('')
  const save = useAction()
  const saveVersion = async (event: React.FormEvent) => {
    event.preventDefault()
    if (await save.run(() => api('POST', `/api/v1/documents/${docId}/versions/`, { name }))) { setName(''); versions.reload() }
  }
  return (
    <aside className='panel' aria-label='Version history'>
      <div className='panel-head'><h3>History</h3><button type='button' className='icon' aria-label='Close history' onClick={onClose}>✕</button></div>
      <form className='inline-form' onSubmit={saveVersion}>
        <input aria-label='Version name' placeholder='Name this version…' value={name} onChange={(e) => setName(e.target.value)} required />
        <button type='submit' disabled={save.busy}>Save</button>
      </form>
      <ErrorText error={save.error} />
      <Status state={versions} what='versions'>
        {(items) => (
          <ul className='versions'>
            {items.length === 0 && <li className='muted'>No versions yet. Name one above.</li>}
            {items.map((v) => (
              <li key={v.id}>
                <button type='button' className={selected === v.id ? 'version selected' : 'version'} aria-pressed={selected === v.id} onClick={() => setSelected(v.id)}>
                  <strong>{v.name ?? (v.kind === 'restore' ? 'Restored' : 'Autosave')}</strong>
                  <span className='muted'>{new Date(v.created_at).toLocaleString()} · v{v.seq}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Status>
      {selected && <VersionPreview key={selected} docId={docId} versionId={selected} onRestored={versions.reload} />}
    </aside>
  )
}

function VersionPreview ({ docId, versionId, onRestored }: { docId: string, versionId: string, onRestored: () => void }) {
  const version = useLoad(() => api<VersionDetail>('GET', `/api/v1/documents/${docId}/versions/${versionId}/`), [docId, versionId])
  const restore = useAction()
  const [done, setDone] = useState<string | null>(null)
  const doRestore = async () => {
    const result = await restore.run(() => api<{ applied: boolean }>('POST', `/api/v1/documents/${docId}/versions/${versionId}/restore/`, undefined, { 'Idempotency-Key': crypto.randomUUID() }))
    if (result) { setDone(result.applied ? 'Restored. Everyone editing sees it now.' : 'The page already matches this version.'); onRestored() }
  }
  return (
    <Status state={version} what='the version'>
      {(data) => (
        <div className='preview' data-testid='version-preview'>
          <p className='muted'>By {data.authors.map((a) => a.display_name ?? 'someone').join(', ') || 'nobody yet'}</p>
          <ReadOnlyBlocks blocks={data.content.blocks} />
          <button type='button' className='primary' disabled={restore.busy} onClick={() => void doRestore()}>Restore this version</button>
          <ErrorText error={restore.error} />
          {done && <p className='hint' role='status'>{done}</p>}
        </div>
      )}
    </Status>
  )
}

function ReadOnlyBlocks ({ blocks }: { blocks: any[] }) {
  const editor = useCreateBlockNote({ initialContent: blocks.length > 0 ? blocks : undefined }, [blocks])
  return <div className='editor readonly'><BlockNoteView editor={editor} editable={false} theme='light' /></div>
}
