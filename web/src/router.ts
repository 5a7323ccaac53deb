// History routing over four shapes of URL; the server answers these paths with index.html.
//   /                      workspace picker
//   /w/<ws>                a workspace
//   /w/<ws>/d/<doc>        a document
//   /w/<ws>/b/<board>      a board
import { useEffect, useState } from 'react'

export type Route = { workspace?: string, document?: string, board?: string }

export function parse (path: string): Route {
  const parts = path.split('/').filter(Boolean)
  if (parts[0] !== 'w' || !parts[1]) return {}
  const route: Route = { workspace: parts[1] }
  if (parts[2] === 'd' && parts[3]) route.document = parts[3]
  if (parts[2] === 'b' && parts[3]) route.board = parts[3]
  return route
}

export function href (route: Route): string {
  if (!route.workspace) return '/'
  if (route.document) return `/w/${route.workspace}/d/${route.document}`
  if (route.board) return `/w/${route.workspace}/b/${route.board}`
  return `/w/${route.workspace}`
}

export function navigate (route: Route) {
  const next = href(route)
  if (next !== window.location.pathname) {
    window.history.pushState(null, '', next)
    window.dispatchEvent(new PopStateEvent('popstate'))
  }
}

export function useRoute (): Route {
  const [route, setRoute] = useState(() => parse(window.location.pathname))
  useEffect(() => {
    const update = () => setRoute(parse(window.location.pathname))
    window.addEventListener('popstate', update)
    return () => window.removeEventListener('popstate', update)
  }, [])
  return route
}
