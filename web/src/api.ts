// The API client: JSON over fetch, the session's tokens, one refresh at a time.
//
// The server rotates refresh tokens and treats a reused one as theft (the whole session is
// revoked), so refreshes are serialised — within a tab by one shared promise, across tabs by a
// Web Lock plus localStorage: a tab that waited re-reads the stored pair and uses it if another
// tab already refreshed (README "Refresh rotation").

export type User = { id: string; email: string; display_name: string }
export type Session = { access: string; refresh: string; user: User }

declare global {
  interface Window {
    /** Where the API lives when the app is served from another origin (README "Web app"). */
    COLLAB_API_BASE?: string
  }
}

export const apiBase = (): string =>
  (window.COLLAB_API_BASE || import.meta.env.VITE_COLLAB_API || window.location.origin).replace(/\/+$/, '')

export const wsBase = (): string => apiBase().replace(/^http/, 'ws')

const STORAGE_KEY = 'collab.session'

export class ApiError extends Error {
  constructor (
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, unknown> = {},
    readonly body: any = null
  ) {
    super(message)
  }
}

/** The API's error JSON as one sentence a person can act on. */
export function humanError (err: unknown): string {
  if (!(err instanceof ApiError)) {
    return err instanceof Error ? err.message : String(err)
  }
  const known: Record<string, string> = {
    network: 'Cannot reach the server. Check your connection and try again.',
    invalid_credentials: 'That email and password do not match an account.',
    email_taken: 'An account with this email already exists. Sign in instead.',
    rate_limited: 'Too many attempts. Wait a moment and try again.',
    session_ended: 'Your session has ended. Sign in again.',
    version_conflict: 'Someone else changed this first. You are now seeing the latest version.',
    stale_placement: 'The board changed under you. It has been reloaded.',
    forbidden: 'You do not have permission to do that.',
    not_found: 'This item does not exist, or you no longer have access to it.',
    slug_taken: 'That workspace address is already taken.',
    already_member: 'That person is already a member.',
    invitation_pending: 'That person already has a pending invitation.',
    service_unavailable: 'The server is briefly unavailable. Try again in a moment.'
  }
  const detail = flattenFields(err.fields)
  const base = known[err.code] ?? capitalise(err.message || err.code)
  return detail && !known[err.code] ? `${base}: ${detail}` : base
}

function flattenFields (fields: Record<string, unknown>, prefix = ''): string {
  const parts: string[] = []
  for (const [name, value] of Object.entries(fields ?? {})) {
    const label = name === '_body' || name === '_schema' ? prefix : `${prefix}${name.replace(/_/g, ' ')}`
    if (Array.isArray(value)) parts.push(`${label ? label + ': ' : ''}${value.join(' ')}`)
    else if (value && typeof value === 'object') parts.push(flattenFields(value as Record<string, unknown>, `${label} `))
  }
  return parts.filter(Boolean).join('; ')
}

const capitalise = (text: string) => text.charAt(0).toUpperCase() + text.slice(1)

type Listener = (session: Session | null, reason: 'signed_in' | 'signed_out' | 'ended' | 'refreshed') => void
const listeners = new Set<Listener>()
let current: Session | null = load()
let refreshing: Promise<Session> | null = null

function load (): Session | null {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null')
  } catch {
    return null
  }
}

function store (session: Session | null, reason: Parameters<Listener>[1]) {
  current = session
  if (session) localStorage.setItem(STORAGE_KEY, JSON.stringify(session))
  else localStorage.removeItem(STORAGE_KEY)
  for (const listener of listeners) listener(session, reason)
}

export const session = (): Session | null => current
export function onSession (listener: Listener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

async function send (method: string, path: string, body?: unknown, headers: Record<string, string> = {}, token?: string) {
  const all: Record<string, string> = { ...headers }
  if (body !== undefined) all['Content-Type'] = 'application/json'
  if (token) all.Authorization = `Bearer ${token}`
  let response: Response
  try {
    response = await fetch(apiBase() + path, {
      method,
      headers: all,
      body: body === undefined ? undefined : JSON.stringify(body)
    })
  } catch {
    throw new ApiError(0, 'network', 'network error')
  }
  const text = await response.text()
  let data: any = null
  try {
    data = text ? JSON.parse(text) : null
  } catch {
    data = null
  }
  if (!response.ok) {
    const error = data?.error ?? {}
    throw new ApiError(response.status, error.code ?? `http_${response.status}`, error.message ?? response.statusText, error.fields ?? {}, data)
  }
  return { data, etag: response.headers.get('ETag') }
}

/** A fresh access token: refresh once (serialised), or end the session (revoked, expired). */
export async function refreshSession (): Promise<Session> {
  const stale = current
  if (!stale) throw new ApiError(401, 'session_ended', 'signed out')
  if (!refreshing) {
    refreshing = withLock(async () => {
      const stored = load()
      if (stored && stored.refresh !== stale.refresh) {
        store(stored, 'refreshed') // another tab refreshed while we waited for the lock
        return stored
      }
      try {
        const { data } = await send('POST', '/api/v1/auth/token/refresh/', { refresh_token: stale.refresh })
        const next = { ...stale, access: data.access_token, refresh: data.refresh_token }
        store(next, 'refreshed')
        return next
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          store(null, 'ended')
          throw new ApiError(401, 'session_ended', 'session ended')
        }
        throw err
      }
    }).finally(() => { refreshing = null })
  }
  return refreshing
}

async function withLock<T> (run: () => Promise<T>): Promise<T> {
  const locks = (navigator as any).locks
  return locks ? locks.request('collab.refresh', run) : run()
}

/** A signed-in call; one refresh and retry on 401. Resolves to the JSON body (null for 204). */
export async function api<T = any> (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
  return (await apiWithEtag<T>(method, path, body, headers)).data
}

export async function apiWithEtag<T = any> (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ data: T, etag: string | null }> {
  if (!current) throw new ApiError(401, 'session_ended', 'signed out')
  try {
    return await send(method, path, body, headers, current.access)
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err
  }
  const fresh = await refreshSession()
  return send(method, path, body, headers, fresh.access)
}

export async function signIn (email: string, password: string): Promise<Session> {
  const { data: tokens } = await send('POST', '/api/v1/auth/login/', { email, password })
  const { data: user } = await send('GET', '/api/v1/auth/me/', undefined, {}, tokens.access_token)
  const next = { access: tokens.access_token, refresh: tokens.refresh_token, user }
  store(next, 'signed_in')
  return next
}

export async function signUp (email: string, password: string, displayName: string): Promise<Session> {
  await send('POST', '/api/v1/auth/register/', { email, password, display_name: displayName })
  return signIn(email, password)
}

export async function signOut (): Promise<void> {
  try {
    if (current) await send('POST', '/api/v1/auth/logout/', undefined, {}, current.access)
  } catch {
    // Signing out locally is what matters; the server side expires on its own.
  } finally {
    store(null, 'signed_out')
  }
}

/** The session was revoked elsewhere (a socket closed 4401 and refreshing failed). */
export const endSession = () => store(null, 'ended')

/** Colour of a user, stable across sessions and windows (cursor, avatar). */
export function userColor (id: string): string {
  const palette = ['#e11d48', '#2563eb', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#dc2626', '#4f46e5', '#0d9488', '#c2410c']
  let hash = 0
  for (const char of id) hash = (hash * 31 + char.charCodeAt(0)) >>> 0
  return palette[hash % palette.length]
}

export const initials = (name: string) =>
  name.split(/\s+/).filter(Boolean).slice(0, 2).map((part) => part[0]!.toUpperCase()).join('') || '?'
