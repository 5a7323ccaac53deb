// The page an invitation email links to: /invite/<token>. Signed out, the person signs in or
// creates an account first (App shows the auth forms with `InviteNotice` above them); signed in,
// the page accepts the invitation once and opens the workspace. The API has no public way to
// look an invitation up (that would tell anyone holding a link whose invitation it is), so the
// page knows nothing about it until the accept answers.
import { useEffect, useRef, useState } from 'react'
import { ApiError, api, humanError, signOut, type Session } from './api'
import { navigate } from './router'
import type { Workspace } from './Shell'

/** The token of an /invite/<token> path, or null for every other page. */
export function inviteToken (path: string): string | null {
  const match = /^\/invite\/([^/]+)\/?$/.exec(path)
  if (!match) return null
  try {
    return decodeURIComponent(match[1])
  } catch {
    return match[1] // not valid percent-encoding: the API answers it as an unknown invitation
  }
}

/** The invitation token of the current URL, following the app's history navigation. */
export function useInviteToken (): string | null {
  const [token, setToken] = useState(() => inviteToken(window.location.pathname))
  useEffect(() => {
    const update = () => setToken(inviteToken(window.location.pathname))
    window.addEventListener('popstate', update)
    return () => window.removeEventListener('popstate', update)
  }, [])
  return token
}

export function InviteNotice () {
  return (
    <div className='notice' data-testid='invite-notice'>
      <h2>You&apos;ve been invited</h2>
      <p>Sign in, or create an account with the email address the invitation was sent to, to join the workspace.</p>
    </div>
  )
}

/** What each refusal of the accept means to the person who clicked the link. */
const REFUSED: Record<string, string> = {
  invitation_not_found: 'This invitation link is not valid. Check that you opened the whole link from the email, or ask for a new invitation.',
  invitation_expired: 'This invitation has expired. Ask the person who invited you to send a new one.',
  invitation_used: 'This invitation has already been used. If you accepted it, the workspace is in your list.',
  invitation_revoked: 'This invitation was withdrawn by the workspace. Ask its members for a new one if you still need access.',
  invitation_email_mismatch: 'This invitation was sent to a different email address than the one you are signed in with. Sign out, then sign in or create an account with the invited address.',
  already_member: 'You are already a member of this workspace.'
}

export function InvitePage ({ token, session }: { token: string, session: Session }) {
  const [error, setError] = useState<{ code: string | null, text: string } | null>(null)
  const started = useRef(false)
  useEffect(() => {
    // Once per page: a second accept of a single-use invitation would answer "already used".
    if (started.current) return
    started.current = true
    api<Workspace>('POST', `/api/v1/invitations/${encodeURIComponent(token)}/accept/`).then(
      (workspace) => navigate({ workspace: workspace.id }),
      (err) => {
        const code = err instanceof ApiError ? err.code : null
        setError({ code, text: (code && REFUSED[code]) || humanError(err) })
      }
    )
  }, [token])
  return (
    <main className='auth'>
      <div className='card auth-card' aria-label='Invitation'>
        <h1><span className='logo' aria-hidden='true' /> collab</h1>
        {!error && <p className='loading' aria-busy='true'>Joining the workspace…</p>}
        {error && (
          <>
            <p className='error' role='alert'>{error.text}</p>
            {error.code === 'invitation_email_mismatch' && (
              <p className='hint'>Signed in as {session.user.email}.</p>
            )}
            <div className='tabs'>
              {error.code === 'invitation_email_mismatch'
                ? <button type='button' className='primary' onClick={() => void signOut()}>Sign out</button>
                : <button type='button' className='primary' onClick={() => navigate({})}>Go to my workspaces</button>}
            </div>
          </>
        )}
      </div>
    </main>
  )
}
