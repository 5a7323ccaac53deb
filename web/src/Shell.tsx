// The signed-in frame: workspace picker, the sidebar (pages, boards, members) and the main pane.
import { useEffect, useState } from 'react'
import { api, signOut, type Session } from './api'
import { BoardPage } from './Board'
import { DocumentPage } from './DocumentPage'
import { InboxButton } from './Inbox'
import { navigate, useRoute } from './router'
import { Avatar, ErrorText, Status, useAction, useLoad } from './ui'

export type Workspace = { id: string, name: string, slug: string, my_role: string }
export type DocHeader = { id: string, title: string, parent_id: string | null, board_id: string | null, my_role?: string }
type Board = { id: string, name: string, color: string | null, my_role?: string }
type Member = { user_id: string, email: string, display_name: string, role: string }

export function Shell ({ session }: { session: Session }) {
  const route = useRoute()
  const [menuOpen, setMenuOpen] = useState(false)
  const workspaces = useLoad(() => api<{ items: Workspace[] }>('GET', '/api/v1/workspaces/?limit=100').then((page) => page.items), [])
  const workspace = workspaces.data?.find((w) => w.id === route.workspace) ?? null

  // Open the only (or first) workspace when the URL names none.
  useEffect(() => {
    if (!route.workspace && workspaces.data && workspaces.data.length > 0) navigate({ workspace: workspaces.data[0].id })
  }, [route.workspace, workspaces.data])
  useEffect(() => setMenuOpen(false), [route.document, route.board])

  return (
    <div className={`shell ${menuOpen ? 'menu-open' : ''}`}>
      <header className='topbar'>
        <button type='button' className='icon menu-button' aria-label='Menu' aria-expanded={menuOpen} onClick={() => setMenuOpen(!menuOpen)}>☰</button>
        <span className='brand'><span className='logo' aria-hidden='true' /> collab</span>
        <Status state={workspaces} what='workspaces'>
          {(items) => (
            <label className='picker'>
              <span className='sr-only'>Workspace</span>
              <select
                aria-label='Workspace' value={route.workspace ?? ''}
                onChange={(e) => navigate({ workspace: e.target.value || undefined })}
              >
                {!route.workspace && <option value=''>Choose a workspace</option>}
                {items.map((w) => <option key={w.id} value={w.id}>{w.name}</option>)}
              </select>
            </label>
          )}
        </Status>
        <span className='spacer' />
        <InboxButton />
        <span className='me'><Avatar id={session.user.id} name={session.user.display_name} /> <span className='me-name'>{session.user.display_name}</span></span>
        <button type='button' className='ghost' onClick={() => void signOut()}>Sign out</button>
      </header>
      <nav className='sidebar' aria-label='Sidebar'>
        <NewWorkspace onCreated={(w) => { workspaces.reload(); navigate({ workspace: w.id }) }} />
        {workspace && <Sidebar key={workspace.id} workspace={workspace} />}
      </nav>
      <main className='content'>
        {workspaces.data && workspaces.data.length === 0 && (
          <div className='empty'><h2>Welcome, {session.user.display_name}</h2><p>Create a workspace to start (left), or ask for an invitation.</p></div>
        )}
        {route.workspace && workspaces.data && !workspace && <p className='error' role='alert'>This workspace does not exist, or you are no longer a member.</p>}
        {workspace && route.document && <DocumentPage key={route.document} workspace={workspace} docId={route.document} session={session} />}
        {workspace && route.board && <BoardPage key={route.board} workspace={workspace} boardId={route.board} session={session} />}
        {workspace && !route.document && !route.board && (
          <div className='empty'><h2>{workspace.name}</h2><p>Open a page or a board from the sidebar, or create one.</p></div>
        )}
      </main>
    </div>
  )
}

function NewWorkspace ({ onCreated }: { onCreated: (w: Workspace) => void }) {
  const [name, setName] = useState('')
  const action = useAction()
  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    const created = await action.run(() => api<Workspace>('POST', '/api/v1/workspaces/', { name }))
    if (created) { setName(''); onCreated(created) }
  }
  return (
    <form className='inline-form' onSubmit={submit}>
      <input aria-label='New workspace name' placeholder='New workspace…' value={name} onChange={(e) => setName(e.target.value)} required />
      <button type='submit' disabled={action.busy}>Create</button>
      <ErrorText error={action.error} />
    </form>
  )
}

function Sidebar ({ workspace }: { workspace: Workspace }) {
  const route = useRoute()
  const boards = useLoad(() => api<{ items: Board[] }>('GET', `/api/v1/workspaces/${workspace.id}/boards/?limit=100`).then((p) => p.items), [workspace.id])
  const newBoard = useAction()
  const newPage = useAction()
  const createBoard = async () => {
    const board = await newBoard.run(() => api<Board>('POST', '/api/v1/boards/', { workspace_id: workspace.id, name: 'Untitled board' }))
    if (board) { boards.reload(); navigate({ workspace: workspace.id, board: board.id }) }
  }
  const createPage = async (parentId: string | null) => {
    const doc = await newPage.run(() => api<DocHeader>('POST', '/api/v1/documents/', { workspace_id: workspace.id, parent_id: parentId, title: 'Untitled' }))
    if (doc) { pagesChanged(); navigate({ workspace: workspace.id, document: doc.id }) }
  }
  return (
    <>
      <section>
        <h3>Pages <button type='button' className='icon' aria-label='New page' title='New page' onClick={() => void createPage(null)}>+</button></h3>
        <ErrorText error={newPage.error} />
        <DocTree workspace={workspace} parentId={null} selected={route.document} onAdd={createPage} />
      </section>
      <section>
        <h3>Boards <button type='button' className='icon' aria-label='New board' title='New board' onClick={() => void createBoard()}>+</button></h3>
        <ErrorText error={newBoard.error} />
        <Status state={boards} what='boards'>
          {(items) => (
            <ul className='tree'>
              {items.length === 0 && <li className='muted'>No boards yet</li>}
              {items.map((b) => (
                <li key={b.id}>
                  <a href={`/w/${workspace.id}/b/${b.id}`} aria-current={route.board === b.id ? 'page' : undefined}
                    onClick={(e) => { e.preventDefault(); navigate({ workspace: workspace.id, board: b.id }) }}>
                    <span className='swatch' style={{ background: b.color ?? '#64748b' }} /> {b.name}
                  </a>
                </li>
              ))}
            </ul>
          )}
        </Status>
      </section>
      <Members workspace={workspace} />
    </>
  )
}

const PAGES_CHANGED = 'collab:pages-changed'

/** Tell the page tree a title changed (the rename happens in the page, the tree is elsewhere). */
export const pagesChanged = () => window.dispatchEvent(new Event(PAGES_CHANGED))

function usePagesVersion (): number {
  const [version, setVersion] = useState(0)
  useEffect(() => {
    const bump = () => setVersion((v) => v + 1)
    window.addEventListener(PAGES_CHANGED, bump)
    return () => window.removeEventListener(PAGES_CHANGED, bump)
  }, [])
  return version
}

/** One level of the page tree; sub-pages load when a page is expanded. */
function DocTree ({ workspace, parentId, selected, onAdd }: { workspace: Workspace, parentId: string | null, selected?: string, onAdd: (parent: string | null) => void }) {
  const query = parentId ? `parent_id=${parentId}` : 'top_level=true'
  const version = usePagesVersion()
  const docs = useLoad(() => api<{ items: DocHeader[] }>('GET', `/api/v1/documents/?workspace_id=${workspace.id}&${query}&limit=100`).then((p) => p.items.filter((d) => !d.board_id || parentId)), [workspace.id, parentId, version])
  return (
    <Status state={docs} what='pages'>
      {(items) => (
        <ul className='tree' role={parentId ? 'group' : 'tree'} aria-label={parentId ? undefined : 'Pages'}>
          {items.length === 0 && !parentId && <li className='muted'>No pages yet</li>}
          {items.map((doc) => <DocNode key={doc.id} doc={doc} workspace={workspace} selected={selected} onAdd={onAdd} />)}
        </ul>
      )}
    </Status>
  )
}

function DocNode ({ doc, workspace, selected, onAdd }: { doc: DocHeader, workspace: Workspace, selected?: string, onAdd: (parent: string | null) => void }) {
  const [open, setOpen] = useState(false)
  return (
    <li role='treeitem' aria-expanded={open}>
      <div className='tree-row'>
        <button type='button' className='icon twisty' aria-label={open ? `Collapse ${doc.title}` : `Expand ${doc.title}`} onClick={() => setOpen(!open)}>{open ? '▾' : '▸'}</button>
        <a href={`/w/${workspace.id}/d/${doc.id}`} aria-current={selected === doc.id ? 'page' : undefined}
          onClick={(e) => { e.preventDefault(); navigate({ workspace: workspace.id, document: doc.id }) }}>
          {doc.title || 'Untitled'}
        </a>
        <button type='button' className='icon add-sub' aria-label={`New sub-page of ${doc.title || 'Untitled'}`} title='New sub-page' onClick={() => { setOpen(true); onAdd(doc.id) }}>+</button>
      </div>
      {open && <DocTree workspace={workspace} parentId={doc.id} selected={selected} onAdd={onAdd} />}
    </li>
  )
}

function Members ({ workspace }: { workspace: Workspace }) {
  const members = useLoad(() => api<{ items: Member[] }>('GET', `/api/v1/workspaces/${workspace.id}/members/?limit=100`).then((p) => p.items), [workspace.id])
  const [email, setEmail] = useState('')
  const [invited, setInvited] = useState<string | null>(null)
  const action = useAction()
  const canInvite = workspace.my_role !== 'guest'
  const invite = async (event: React.FormEvent) => {
    event.preventDefault()
    const made = await action.run(() => api<{ accept_path: string }>('POST', `/api/v1/workspaces/${workspace.id}/invite/`, { email, role: 'member' }))
    if (made) { setInvited(`Invitation sent to ${email}.`); setEmail('') }
  }
  return (
    <section>
      <h3>Members</h3>
      <Status state={members} what='members'>
        {(items) => (
          <ul className='members'>
            {items.map((m) => (
              <li key={m.user_id}><Avatar id={m.user_id} name={m.display_name} /> <span>{m.display_name}</span> <span className='role'>{m.role}</span></li>
            ))}
          </ul>
        )}
      </Status>
      {canInvite && (
        <form className='inline-form' onSubmit={invite}>
          <input type='email' aria-label='Invite by email' placeholder='Invite by email…' value={email} onChange={(e) => setEmail(e.target.value)} required />
          <button type='submit' disabled={action.busy}>Invite</button>
        </form>
      )}
      <ErrorText error={action.error} />
      {invited && <p className='hint' role='status'>{invited}</p>}
    </section>
  )
}
