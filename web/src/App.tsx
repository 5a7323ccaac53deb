import { useEffect, useState } from 'react'
import { onSession, session as currentSession, signIn, signUp, type Session } from './api'
import { InviteNotice, InvitePage, useInviteToken } from './Invite'
import { Shell } from './Shell'
import { ErrorText, useAction } from './ui'

export function App () {
  const [session, setSession] = useState<Session | null>(currentSession())
  const [ended, setEnded] = useState(false)
  useEffect(() => onSession((next, reason) => {
    setSession(next)
    if (reason === 'ended') setEnded(true)
    if (reason === 'signed_in') setEnded(false)
  }), [])
  const invite = useInviteToken()
  if (!session) return <AuthScreen ended={ended} notice={invite ? <InviteNotice /> : null} />
  if (invite) return <InvitePage token={invite} session={session} />
  return <Shell session={session} />
}

function AuthScreen ({ ended, notice }: { ended: boolean, notice?: React.ReactNode }) {
  const [mode, setMode] = useState<'login' | 'signup'>('login')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [name, setName] = useState('')
  const action = useAction()
  const submit = (event: React.FormEvent) => {
    event.preventDefault()
    void action.run(() => mode === 'login' ? signIn(email, password) : signUp(email, password, name))
  }
  return (
    <main className='auth'>
      <form className='card auth-card' onSubmit={submit} aria-label={mode === 'login' ? 'Sign in' : 'Create account'}>
        <h1><span className='logo' aria-hidden='true' /> collab</h1>
        {notice}
        {ended && (
          <p className='notice revoked' role='alert' data-testid='session-ended'>
            Your session was ended (signed out elsewhere, password changed or access revoked). Sign in again.
          </p>
        )}
        <div className='tabs' role='tablist'>
          <button type='button' role='tab' aria-selected={mode === 'login'} onClick={() => setMode('login')}>Sign in</button>
          <button type='button' role='tab' aria-selected={mode === 'signup'} onClick={() => setMode('signup')}>Create account</button>
        </div>
        {mode === 'signup' && (
          <label>Name<input name='display_name' autoComplete='name' value={name} onChange={(e) => setName(e.target.value)} required /></label>
        )}
        <label>Email<input name='email' type='email' autoComplete='email' value={email} onChange={(e) => setEmail(e.target.value)} required autoFocus /></label>
        <label>Password<input name='password' type='password' autoComplete={mode === 'login' ? 'current-password' : 'new-password'} value={password} onChange={(e) => setPassword(e.target.value)} required /></label>
        {mode === 'signup' && <p className='hint'>At least 10 characters.</p>}
        <ErrorText error={action.error} />
        <button className='primary' type='submit' disabled={action.busy}>
          {action.busy ? 'Please wait…' : mode === 'login' ? 'Sign in' : 'Create account'}
        </button>
      </form>
    </main>
  )
}
