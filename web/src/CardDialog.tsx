// An open card: its title and description (saved with If-Match, so a concurrent edit is a clear
// conflict, not a silent overwrite) and its comment threads. Opening it tells the board socket
// which card this person is viewing (the others see their avatar on the card).
import { useEffect, useRef, useState } from 'react'
import { api, ApiError, humanError } from './api'
import { Composer, ThreadView, toBody, type Member, type Thread } from './Comments'
import { ErrorText, Status, useAction, useLoad } from './ui'

export type CardFields = { id: string, title: string, description: string, version: number }

type Props = {
  card: CardFields
  workspaceId: string
  /** Counts the board's comment events: each reloads the threads. */
  commentChanges: number
  onSaved: (card: any) => void
  onClose: () => void
}

export function CardDialog ({ card, workspaceId, commentChanges, onSaved, onClose }: Props) {
  const dialog = useRef<HTMLDialogElement>(null)
  const [title, setTitle] = useState(card.title)
  const [description, setDescription] = useState(card.description ?? '')
  const [conflict, setConflict] = useState<string | null>(null)
  const save = useAction()
  const threads = useLoad(() => api<{ items: Thread[] }>('GET', `/api/v1/cards/${card.id}/threads/?status=open&limit=100`).then((p) => p.items), [card.id, commentChanges])
  const members = useLoad(() => api<{ items: Member[] }>('GET', `/api/v1/workspaces/${workspaceId}/members/?limit=100`).then((p) => p.items), [workspaceId])
  const names = new Map((members.data ?? []).map((m) => [m.user_id, m.display_name]))
  const start = useAction()

  useEffect(() => {
    const element = dialog.current
    element?.showModal()
    return () => element?.close()
  }, [])

  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    setConflict(null)
    try {
      onSaved(await api('PATCH', `/api/v1/cards/${card.id}/`, { title, description }, { 'If-Match': `"${card.version}"` }))
      save.setError(null)
    } catch (err) {
      const current = err instanceof ApiError ? err.body?.current : null
      if (current) {
        onSaved(current)
        setTitle(current.title)
        setDescription(current.description ?? '')
        setConflict('Someone else changed this card while you were editing. It now shows their version; make your change again.')
      } else save.setError(humanError(err))
    }
  }
  const comment = async (text: string, mentions: Member[]) => {
    const made = await start.run(() => api('POST', `/api/v1/cards/${card.id}/threads/`, { body: toBody(text, mentions) }))
    if (made) threads.reload()
    return Boolean(made)
  }
  return (
    <dialog ref={dialog} className='card-dialog' aria-label={`Card ${card.title}`} onClose={onClose}>
      <form onSubmit={submit} className='card-form'>
        <div className='panel-head'>
          <input aria-label='Card title' className='card-title' value={title} onChange={(e) => setTitle(e.target.value)} required />
          <button type='button' className='icon' aria-label='Close card' onClick={onClose}>✕</button>
        </div>
        <label>Description
          <textarea aria-label='Description' rows={4} value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
        {conflict && <p className='notice conflict' role='alert'>{conflict}</p>}
        <ErrorText error={save.error} />
        <button type='submit' className='primary'>Save card</button>
      </form>
      <section aria-label='Card comments' className='card-comments'>
        <h3>Comments</h3>
        <Composer members={members.data ?? []} placeholder='Write a comment… (@ to mention)' submitLabel='Comment' onSubmit={comment} label='New card comment' />
        <ErrorText error={start.error} />
        <Status state={threads} what='comments'>
          {(items) => (
            <ul className='threads'>
              {items.length === 0 && <li className='muted'>No comments yet.</li>}
              {items.map((t) => <ThreadView key={t.id} thread={t} names={names} members={members.data ?? []} editor={null} onChange={threads.reload} />)}
            </ul>
          )}
        </Status>
      </section>
    </dialog>
  )
}
