// Small shared pieces: loading/error states for every call, avatars, the async-data hook.
import { useCallback, useEffect, useRef, useState } from 'react'
import { humanError, initials, userColor } from './api'

export type Loadable<T> = { data: T | null, error: string | null, loading: boolean, reload: () => void, set: (data: T) => void }

/** Run `load` when `deps` change; stale answers (deps changed meanwhile) are dropped. */
export function useLoad<T> (load: () => Promise<T>, deps: unknown[]): Loadable<T> {
  const [state, setState] = useState<{ data: T | null, error: string | null, loading: boolean }>({ data: null, error: null, loading: true })
  const generation = useRef(0)
  const run = useCallback(() => {
    const mine = ++generation.current
    setState((prev) => ({ ...prev, loading: true, error: null }))
    load().then(
      (data) => { if (mine === generation.current) setState({ data, error: null, loading: false }) },
      (err) => { if (mine === generation.current) setState({ data: null, error: humanError(err), loading: false }) }
    )
  }, deps) // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(run, [run])
  const set = useCallback((data: T) => setState({ data, error: null, loading: false }), [])
  return { ...state, reload: run, set }
}

export function Status<T> ({ state, what, children }: { state: Loadable<T>, what: string, children: (data: T) => React.ReactNode }) {
  if (state.error) {
    return (
      <div className='error' role='alert'>
        <span>Could not load {what}: {state.error}</span>
        <button type='button' className='link' onClick={state.reload}>Retry</button>
      </div>
    )
  }
  if (state.data === null) return <div className='loading' aria-busy='true'>Loading {what}…</div>
  return <>{children(state.data)}</>
}

export function ErrorText ({ error }: { error: string | null }) {
  return error ? <p className='error' role='alert'>{error}</p> : null
}

export function Avatar ({ id, name, color, title }: { id: string, name: string, color?: string, title?: string }) {
  return (
    <span className='avatar' style={{ background: color ?? userColor(id) }} title={title ?? name} aria-label={name} data-name={name}>
      {initials(name)}
    </span>
  )
}

/** A pending action's state: busy while it runs, its error as a human message. */
export function useAction () {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const run = useCallback(async <T,>(action: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true)
    setError(null)
    try {
      return await action()
    } catch (err) {
      setError(humanError(err))
      return undefined
    } finally {
      setBusy(false)
    }
  }, [])
  return { busy, error, setError, run }
}
