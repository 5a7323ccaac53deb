// A board: lists and cards, dragged with the mouse or moved with the keyboard.
//
// State comes from GET /boards/<id> (with its `event_seq`) and then from the board socket opened
// with `?since=<last seq applied>`: no gap, no overlap, also after a reconnect. Moves are
// optimistic: the card moves at once and the request carries `If-Match: "<version we saw>"`; a
// 409 puts the server's current card (from the error body) in its place and says why.
import { useCallback, useEffect, useReducer, useRef, useState } from 'react'
import { api, ApiError, humanError, type Session } from './api'
import { CardDialog } from './CardDialog'
import { openLiveSocket, type LiveSocket, type SocketState } from './liveSocket'
import type { Workspace } from './Shell'
import { Avatar, ErrorText, useAction } from './ui'

type Card = { id: string, list_id: string, board_id: string, title: string, description: string, position: string, version: number, archived: boolean }
type List = { id: string, name: string, position: string, version: number, archived: boolean }
type BoardHeader = { id: string, name: string, color: string | null, version: number, event_seq: number, archived: boolean }
type Viewer = { conn_id: string, user_id: string, display_name: string, card_id: string | null }
type State = { board: BoardHeader | null, lists: Record<string, List>, cards: Record<string, Card>, seq: number }
type Action =
  | { type: 'loaded', board: BoardHeader & { lists: (List & { cards: Card[] })[] } }
  | { type: 'event', event: { type: string, seq: number, entity: any } }
  | { type: 'card', card: Card }
  | { type: 'list', list: List }

const byPosition = (a: { position: string, id: string }, b: { position: string, id: string }) =>
  a.position < b.position ? -1 : a.position > b.position ? 1 : a.id < b.id ? -1 : 1

/** A key strictly between two neighbours' keys, for the optimistic display only (never sent). */
const between = (before?: string, after?: string) => before !== undefined ? before + '\u0001' : after !== undefined ? '' : '0'

function reduce (state: State, action: Action): State {
  switch (action.type) {
    case 'loaded': {
      const lists: Record<string, List> = {}
      const cards: Record<string, Card> = {}
      for (const list of action.board.lists) {
        lists[list.id] = list
        for (const card of list.cards) cards[card.id] = card
      }
      return { board: action.board, lists, cards, seq: action.board.event_seq }
    }
    case 'card': return { ...state, cards: { ...state.cards, [action.card.id]: action.card } }
    case 'list': return { ...state, lists: { ...state.lists, [action.list.id]: action.list } }
    case 'event': {
      const { event } = action
      if (event.seq <= state.seq) return state // replayed or republished: already applied
      const next = { ...state, seq: event.seq }
      const [kind] = event.type.split('.')
      if (kind === 'card' && event.entity.board_id === state.board?.id) next.cards = { ...state.cards, [event.entity.id]: event.entity }
      else if (kind === 'card') { // moved to another board
        const { [event.entity.id]: _gone, ...rest } = state.cards
        next.cards = rest
      } else if (kind === 'list') next.lists = { ...state.lists, [event.entity.id]: event.entity }
      else if (kind === 'board') next.board = { ...state.board!, ...event.entity }
      else if (event.type === 'positions.rebalanced') {
        const { scope, positions } = event.entity
        if (scope === 'cards') next.cards = applyPositions(state.cards, positions)
        if (scope === 'lists') next.lists = applyPositions(state.lists, positions)
      }
      return next
    }
  }
}

function applyPositions<T extends { position: string }> (items: Record<string, T>, positions: Record<string, string>) {
  const out = { ...items }
  for (const [id, position] of Object.entries(positions)) if (out[id]) out[id] = { ...out[id], position }
  return out
}

export function BoardPage ({ workspace, boardId, session }: { workspace: Workspace, boardId: string, session: Session }) {
  const [state, dispatch] = useReducer(reduce, { board: null, lists: {}, cards: {}, seq: 0 })
  const [loadError, setLoadError] = useState<string | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const [socket, setSocket] = useState<SocketState>('connecting')
  const [viewers, setViewers] = useState<Viewer[]>([])
  const [openCard, setOpenCard] = useState<string | null>(null)
  const [commentChanges, setCommentChanges] = useState(0)
  const socketRef = useRef<LiveSocket | null>(null)
  const openCardRef = useRef<string | null>(null)
  openCardRef.current = openCard
  const seqRef = useRef(0)
  seqRef.current = state.seq

  const load = useCallback(async () => {
    try {
      dispatch({ type: 'loaded', board: await api('GET', `/api/v1/boards/${boardId}/`) })
      setLoadError(null)
    } catch (err) {
      setLoadError(humanError(err))
    }
  }, [boardId])

  // The socket opens once the board is loaded, from its event_seq; reconnects resume from the
  // last applied seq (liveSocket.ts).
  const loaded = state.board !== null
  useEffect(() => { void load() }, [load])
  useEffect(() => {
    if (!loaded) return
    const socket = openLiveSocket({
      path: () => `/ws/boards/${boardId}/?since=${seqRef.current}`,
      onState: setSocket,
      onFrame: (frame) => {
        if (frame.type === 'event') {
          dispatch({ type: 'event', event: frame.event })
          if (/^(thread|comment)\./.test(frame.event.type)) setCommentChanges((n) => n + 1)
        } else if (frame.type === 'ready') {
          setSocket('live')
          socket.send({ type: 'presence', card_id: openCardRef.current }) // again after a reconnect
        }
        else if (frame.type === 'refetch') void load()
        else if (frame.type === 'presence') setViewers((prev) => applyPresence(prev, frame))
      }
    })
    socketRef.current = socket
    return socket.close
  }, [loaded, boardId, load])

  // Which card I have open, for the others' "who is looking at this card".
  useEffect(() => { socketRef.current?.send({ type: 'presence', card_id: openCard }) }, [openCard])
  const lookingAt = (cardId: string) => dedupeViewers(viewers.filter((v) => v.card_id === cardId && v.user_id !== session.user.id))

  const lists = Object.values(state.lists).filter((l) => !l.archived).sort(byPosition)
  const cardsOf = (listId: string) => Object.values(state.cards).filter((c) => c.list_id === listId && !c.archived).sort(byPosition)

  /** Move a card to `index` in `listId` (index among the target list's other cards). */
  const moveCard = async (card: Card, listId: string, index: number) => {
    const others = cardsOf(listId).filter((c) => c.id !== card.id)
    const before = others[index - 1]
    const after = others[index]
    if (card.list_id === listId && cardsOf(listId).indexOf(card) === index) return
    dispatch({ type: 'card', card: { ...card, list_id: listId, position: between(before?.position, after?.position) } })
    setNotice(null)
    try {
      const moved = await api<Card>('POST', `/api/v1/cards/${card.id}/move/`,
        { list_id: listId, after_id: before?.id ?? null, before_id: before ? null : after?.id ?? null },
        { 'If-Match': `"${card.version}"` })
      dispatch({ type: 'card', card: moved })
    } catch (err) {
      const current = err instanceof ApiError ? err.body?.current : null
      if (current) dispatch({ type: 'card', card: current })
      else void load()
      setNotice(err instanceof ApiError && err.code === 'version_conflict'
        ? `“${card.title}” was changed by someone else before your move, so it was not moved. The board shows the latest state; try again.`
        : humanError(err))
    }
  }

  const moveList = async (list: List, index: number) => {
    const others = lists.filter((l) => l.id !== list.id)
    const before = others[index - 1]
    const after = others[index]
    if (lists.indexOf(list) === index) return
    dispatch({ type: 'list', list: { ...list, position: between(before?.position, after?.position) } })
    setNotice(null)
    try {
      dispatch({ type: 'list', list: await api<List>('POST', `/api/v1/lists/${list.id}/move/`, { after_id: before?.id ?? null, before_id: before ? null : after?.id ?? null }, { 'If-Match': `"${list.version}"` }) })
    } catch (err) {
      const current = err instanceof ApiError ? err.body?.current : null
      if (current) dispatch({ type: 'list', list: current })
      else void load()
      setNotice(err instanceof ApiError && err.code === 'version_conflict'
        ? `The list “${list.name}” was changed by someone else before your move, so it was not moved.`
        : humanError(err))
    }
  }

  if (loadError && !state.board) {
    return <div className='error' role='alert'>Could not load the board: {loadError} <button type='button' className='link' onClick={() => void load()}>Retry</button></div>
  }
  if (!state.board) return <div className='loading' aria-busy='true'>Loading the board…</div>
  return (
    <div className='board' data-testid='board'>
      <div className='board-header'>
        <BoardTitle board={state.board} />
        <div className='presence' aria-label='People on this board'>
          {dedupeViewers(viewers).map((v) => <Avatar key={v.user_id} id={v.user_id} name={v.display_name} />)}
        </div>
        <span className={`badge conn-${socket}`} role='status' data-testid='connection' data-state={socket}>
          {{ connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', forbidden: 'No access', gone: 'Deleted' }[socket]}
        </span>
      </div>
      <p className='hint keyboard-hint'>Drag cards and lists, or focus a card and use Alt+arrow keys to move it; Enter opens it.</p>
      {notice && <p className='notice conflict' role='alert' data-testid='board-notice'>{notice} <button type='button' className='link' onClick={() => setNotice(null)}>Dismiss</button></p>}
      {socket === 'forbidden' && <p className='error' role='alert' data-testid='access-lost'>You no longer have access to this board.</p>}
      <div className='lists'>
        {lists.map((list, listIndex) => (
          <ListColumn key={list.id} list={list} index={listIndex} cards={cardsOf(list.id)} lists={lists}
            onMoveCard={moveCard} onMoveList={moveList} cardsOf={cardsOf} findCard={(id) => state.cards[id]}
            onOpenCard={setOpenCard} lookingAt={lookingAt} />
        ))}
        <NewList boardId={boardId} onCreated={(list) => dispatch({ type: 'list', list })} />
      </div>
      {openCard && state.cards[openCard] && (
        <CardDialog card={state.cards[openCard]} workspaceId={workspace.id} commentChanges={commentChanges}
          onSaved={(card) => dispatch({ type: 'card', card })} onClose={() => setOpenCard(null)} />
      )}
    </div>
  )
}

function applyPresence (viewers: Viewer[], frame: any): Viewer[] {
  if (frame.state === 'snapshot') return frame.viewers
  const rest = viewers.filter((v) => v.conn_id !== frame.conn_id)
  return frame.state === 'left' ? rest : [...rest, frame]
}

const dedupeViewers = (viewers: Viewer[]) => [...new Map(viewers.map((v) => [v.user_id, v])).values()]

type ColumnProps = {
  list: List, index: number, cards: Card[], lists: List[],
  onMoveCard: (card: Card, listId: string, index: number) => Promise<void>,
  onMoveList: (list: List, index: number) => Promise<void>,
  cardsOf: (listId: string) => Card[], findCard: (id: string) => Card | undefined,
  onOpenCard: (cardId: string) => void, lookingAt: (cardId: string) => Viewer[]
}

function ListColumn ({ list, index, cards, lists, onMoveCard, onMoveList, cardsOf, findCard, onOpenCard, lookingAt }: ColumnProps) {
  const [over, setOver] = useState(false)
  /** Where a drop at this pointer position lands: before the first card whose middle is below it. */
  const dropIndex = (event: React.DragEvent, body: HTMLElement) => {
    const rows = [...body.querySelectorAll<HTMLElement>('[data-card-id]')].filter((el) => el.dataset.cardId !== draggedCard)
    const found = rows.findIndex((el) => { const r = el.getBoundingClientRect(); return event.clientY < r.top + r.height / 2 })
    return found === -1 ? rows.length : found
  }
  const onDrop = (event: React.DragEvent<HTMLElement>) => {
    event.preventDefault()
    setOver(false)
    const cardId = event.dataTransfer.getData('application/x-collab-card')
    const listId = event.dataTransfer.getData('application/x-collab-list')
    if (cardId && findCard(cardId)) void onMoveCard(findCard(cardId)!, list.id, dropIndex(event, event.currentTarget))
    else if (listId && listId !== list.id) void onMoveList(lists.find((l) => l.id === listId)!, index)
  }
  const onCardKey = (event: React.KeyboardEvent, card: Card, position: number) => {
    if (event.key === 'Enter' && !event.altKey) { event.preventDefault(); onOpenCard(card.id); return }
    if (!event.altKey) return
    const target = { ArrowUp: [index, position - 1], ArrowDown: [index, position + 1], ArrowLeft: [index - 1, 0], ArrowRight: [index + 1, 0] }[event.key]
    if (!target) return
    event.preventDefault()
    const [listIndex, cardIndex] = target
    const targetList = lists[listIndex]
    if (!targetList || cardIndex < 0) return
    void onMoveCard(card, targetList.id, Math.min(cardIndex, cardsOf(targetList.id).filter((c) => c.id !== card.id).length)).then(() => {
      document.querySelector<HTMLElement>(`[data-card-id="${card.id}"]`)?.focus()
    })
  }
  return (
    <section className={`list ${over ? 'drop-over' : ''}`} aria-label={`List ${list.name}`} data-list-id={list.id}
      onDragOver={(e) => { e.preventDefault(); setOver(true) }} onDragLeave={() => setOver(false)} onDrop={onDrop}>
      <h3 draggable onDragStart={(e) => { e.dataTransfer.setData('application/x-collab-list', list.id); e.dataTransfer.effectAllowed = 'move' }}
        title='Drag to reorder lists'>{list.name} <span className='count'>{cards.length}</span></h3>
      <ol className='cards'>
        {cards.map((card, position) => (
          <li key={card.id} className='board-card' tabIndex={0} draggable data-card-id={card.id} data-testid='card'
            aria-label={`${card.title}, in ${list.name}, position ${position + 1} of ${cards.length}`}
            onDragStart={(e) => { draggedCard = card.id; e.dataTransfer.setData('application/x-collab-card', card.id); e.dataTransfer.effectAllowed = 'move' }}
            onDragEnd={() => { draggedCard = null }}
            onKeyDown={(e) => onCardKey(e, card, position)} onClick={() => onOpenCard(card.id)}>
            <span>{card.title}</span>
            {lookingAt(card.id).length > 0 && (
              <span className='viewers' data-testid='card-viewers'>
                {lookingAt(card.id).map((v) => <Avatar key={v.user_id} id={v.user_id} name={v.display_name} title={`${v.display_name} has this card open`} />)}
              </span>
            )}
          </li>
        ))}
      </ol>
      <NewCard listId={list.id} />
    </section>
  )
}

let draggedCard: string | null = null

function NewCard ({ listId }: { listId: string }) {
  const [title, setTitle] = useState('')
  const action = useAction()
  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    // The created card arrives through the board socket like everyone else's.
    if (await action.run(() => api('POST', `/api/v1/lists/${listId}/cards/`, { title }))) setTitle('')
  }
  return (
    <form className='inline-form' onSubmit={submit}>
      <input aria-label='New card title' placeholder='Add a card…' value={title} onChange={(e) => setTitle(e.target.value)} required />
      <button type='submit' disabled={action.busy}>Add</button>
      <ErrorText error={action.error} />
    </form>
  )
}

function NewList ({ boardId, onCreated }: { boardId: string, onCreated: (list: List) => void }) {
  const [name, setName] = useState('')
  const action = useAction()
  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    const list = await action.run(() => api<List>('POST', `/api/v1/boards/${boardId}/lists/`, { name }))
    if (list) { setName(''); onCreated(list) }
  }
  return (
    <form className='list new-list inline-form' onSubmit={submit}>
      <input aria-label='New list name' placeholder='Add a list…' value={name} onChange={(e) => setName(e.target.value)} required />
      <button type='submit' disabled={action.busy}>Add list</button>
      <ErrorText error={action.error} />
    </form>
  )
}

function BoardTitle ({ board }: { board: BoardHeader }) {
  const [name, setName] = useState(board.name)
  const action = useAction()
  useEffect(() => setName(board.name), [board.name])
  const save = async () => {
    if (name === board.name) return
    await action.run(() => api('PATCH', `/api/v1/boards/${board.id}/`, { name }, { 'If-Match': `"${board.version}"` }))
  }
  return (
    <div className='title'>
      <input aria-label='Board name' value={name} onChange={(e) => setName(e.target.value)}
        onBlur={() => void save()} onKeyDown={(e) => { if (e.key === 'Enter') (e.target as HTMLInputElement).blur() }} />
      <ErrorText error={action.error} />
    </div>
  )
}
