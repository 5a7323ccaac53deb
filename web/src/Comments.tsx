// Comments on a page: threads anchored to blocks, replies, resolve, and @mentions with
// autocomplete from the workspace's members (README "Comments": the body is rich-text JSON with
// `mention` nodes; the server notifies who may read the page).
import { useRef, useState } from 'react'
import type { BlockNoteEditor } from '@blocknote/core'
import { api } from './api'
import { Avatar, ErrorText, Status, useAction, useLoad } from './ui'

export type Member = { user_id: string, display_name: string, email: string, role: string }
type Comment = { id: string, author_id: string, text: string, deleted: boolean, created_at: string }
export type Thread = { id: string, status: string, anchor: { block_id: string, state: string } | null, comments: Comment[] }
type Inline = { type: 'text', text: string } | { type: 'mention', user_id: string }

/** Text with `@Name` tokens for the chosen mentions → the API's rich-text body. */
export function toBody (text: string, mentions: Member[]) {
  const paragraphs = text.split('\n').map((line) => {
    const content: Inline[] = []
    let rest = line
    while (rest) {
      const hits = mentions
        .map((m) => ({ m, at: rest.indexOf(`@${m.display_name}`) }))
        .filter((h) => h.at >= 0)
        .sort((a, b) => a.at - b.at)
      if (hits.length === 0) { content.push({ type: 'text', text: rest }); break }
      const { m, at } = hits[0]
      if (at > 0) content.push({ type: 'text', text: rest.slice(0, at) })
      content.push({ type: 'mention', user_id: m.user_id })
      rest = rest.slice(at + m.display_name.length + 1)
    }
    return { type: 'paragraph', content }
  }).filter((p) => p.content.length > 0)
  return { type: 'doc', content: paragraphs }
}

function blockText (editor: BlockNoteEditor<any, any, any> | null, blockId: string): string | null {
  const block = editor?.getBlock(blockId)
  if (!block) return null
  const content = Array.isArray(block.content) ? block.content : []
  return content.map((c: any) => c.text ?? '').join('') || `(${block.type})`
}

/** `changes` counts the comment events the document socket delivered: each reloads the threads. */
export function CommentsPanel ({ docId, workspaceId, editor, changes, onClose }: { docId: string, workspaceId: string, editor: BlockNoteEditor<any, any, any> | null, changes: number, onClose: () => void }) {
  const threads = useLoad(() => api<{ items: Thread[] }>('GET', `/api/v1/documents/${docId}/threads/?status=open&limit=100`).then((p) => p.items), [docId, changes])
  const members = useLoad(() => api<{ items: Member[] }>('GET', `/api/v1/workspaces/${workspaceId}/members/?limit=100`).then((p) => p.items), [workspaceId])
  const names = new Map((members.data ?? []).map((m) => [m.user_id, m.display_name]))
  const start = useAction()
  const [notice, setNotice] = useState<string | null>(null)
  const startThread = async (text: string, mentions: Member[]) => {
    const block = editor?.getTextCursorPosition().block
    if (!block) { start.setError('Put the cursor in the block you want to comment on.'); return false }
    const made = await start.run(() => api<{ unnotified_mentions?: string[] }>('POST', `/api/v1/documents/${docId}/threads/`, { body: toBody(text, mentions), anchor: { block_id: block.id } }))
    if (!made) return false
    const unnotified = (made.unnotified_mentions ?? []).map((id) => names.get(id) ?? 'someone')
    setNotice(unnotified.length ? `${unnotified.join(', ')} cannot read this page and was not notified.` : null)
    threads.reload()
    return true
  }
  return (
    <aside className='panel' aria-label='Comments'>
      <div className='panel-head'><h3>Comments</h3>
        <span><button type='button' className='link' onClick={threads.reload}>Refresh</button>
          <button type='button' className='icon' aria-label='Close comments' onClick={onClose}>✕</button></span>
      </div>
      <Composer members={members.data ?? []} placeholder='Comment on the block with the cursor… (@ to mention)' submitLabel='Comment' onSubmit={startThread} label='New comment' />
      <ErrorText error={start.error} />
      {notice && <p className='hint' role='status'>{notice}</p>}
      <Status state={threads} what='comments'>
        {(items) => (
          <ul className='threads'>
            {items.length === 0 && <li className='muted'>No open comments.</li>}
            {items.map((t) => <ThreadView key={t.id} thread={t} names={names} members={members.data ?? []} editor={editor} onChange={threads.reload} />)}
          </ul>
        )}
      </Status>
    </aside>
  )
}

export function ThreadView ({ thread, names, members, editor, onChange }: { thread: Thread, names: Map<string, string>, members: Member[], editor: BlockNoteEditor<any, any, any> | null, onChange: () => void }) {
  const action = useAction()
  const anchorText = thread.anchor ? blockText(editor, thread.anchor.block_id) : null
  const showBlock = () => {
    if (!thread.anchor) return
    const el = document.querySelector<HTMLElement>(`.bn-editor [data-id="${thread.anchor.block_id}"]`)
    el?.scrollIntoView({ block: 'center', behavior: 'smooth' })
    el?.classList.add('comment-target')
    setTimeout(() => el?.classList.remove('comment-target'), 1500)
  }
  const reply = async (text: string, mentions: Member[]) => {
    const ok = await action.run(() => api('POST', `/api/v1/threads/${thread.id}/comments/`, { body: toBody(text, mentions) }))
    if (ok) onChange()
    return Boolean(ok)
  }
  const resolve = async () => { if (await action.run(() => api('POST', `/api/v1/threads/${thread.id}/resolve/`))) onChange() }
  return (
    <li className='thread' data-testid='thread'>
      {thread.anchor && (
        <button type='button' className='anchor' onClick={showBlock} title='Show the block'>
          {thread.anchor.state === 'orphaned' || anchorText === null ? 'On a block that was removed' : `“${anchorText}”`}
        </button>
      )}
      {thread.comments.map((c) => (
        <div key={c.id} className='comment'>
          <Avatar id={c.author_id} name={names.get(c.author_id) ?? '?'} />
          <div><strong>{names.get(c.author_id) ?? 'Former member'}</strong><p>{c.deleted ? <em>deleted</em> : c.text}</p></div>
        </div>
      ))}
      <Composer members={members} placeholder='Reply…' submitLabel='Reply' onSubmit={reply} label='Reply' />
      <button type='button' className='link' onClick={() => void resolve()} disabled={action.busy}>Resolve</button>
      <ErrorText error={action.error} />
    </li>
  )
}

/** A textarea with @mention autocomplete (arrow keys + Enter/Tab, or click); Ctrl+Enter sends. */
export function Composer ({ members, placeholder, submitLabel, label, onSubmit }: { members: Member[], placeholder: string, submitLabel: string, label: string, onSubmit: (text: string, mentions: Member[]) => Promise<boolean> }) {
  const [text, setText] = useState('')
  const [mentions, setMentions] = useState<Member[]>([])
  const [query, setQuery] = useState<string | null>(null)
  const [active, setActive] = useState(0)
  const area = useRef<HTMLTextAreaElement>(null)
  const matches = query === null ? [] : members.filter((m) => m.display_name.toLowerCase().startsWith(query.toLowerCase())).slice(0, 6)
  const onInput = (value: string) => {
    setText(value)
    const caret = area.current?.selectionStart ?? value.length
    const token = /(^|\s)@([^\s@]*)$/.exec(value.slice(0, caret))
    setQuery(token ? token[2] : null)
    setActive(0)
  }
  const pick = (member: Member) => {
    const caret = area.current?.selectionStart ?? text.length
    const before = text.slice(0, caret).replace(/@([^\s@]*)$/, `@${member.display_name} `)
    setText(before + text.slice(caret))
    setMentions((prev) => prev.some((m) => m.user_id === member.user_id) ? prev : [...prev, member])
    setQuery(null)
    area.current?.focus()
  }
  const submit = async () => {
    if (!text.trim()) return
    if (await onSubmit(text.trim(), mentions.filter((m) => text.includes(`@${m.display_name}`)))) { setText(''); setMentions([]) }
  }
  const onKey = (event: React.KeyboardEvent) => {
    if (matches.length > 0) {
      if (event.key === 'ArrowDown') { event.preventDefault(); setActive((active + 1) % matches.length); return }
      if (event.key === 'ArrowUp') { event.preventDefault(); setActive((active - 1 + matches.length) % matches.length); return }
      if (event.key === 'Enter' || event.key === 'Tab') { event.preventDefault(); pick(matches[active]); return }
      if (event.key === 'Escape') { setQuery(null); return }
    }
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); void submit() }
  }
  return (
    <form className='composer' onSubmit={(e) => { e.preventDefault(); void submit() }}>
      <textarea ref={area} aria-label={label} placeholder={placeholder} value={text} rows={2}
        onChange={(e) => onInput(e.target.value)} onKeyDown={onKey}
        role='combobox' aria-expanded={matches.length > 0} aria-autocomplete='list' />
      {matches.length > 0 && (
        <ul className='mentions' role='listbox' aria-label='Mention someone'>
          {matches.map((m, i) => (
            <li key={m.user_id} role='option' aria-selected={i === active} onMouseDown={(e) => { e.preventDefault(); pick(m) }}>
              <Avatar id={m.user_id} name={m.display_name} /> {m.display_name}
            </li>
          ))}
        </ul>
      )}
      <button type='submit' disabled={!text.trim()}>{submitLabel}</button>
    </form>
  )
}
