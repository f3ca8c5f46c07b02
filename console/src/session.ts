// Who is signed in. The CSRF token comes with the session and rides on every write.
import { reactive } from 'vue'
import { ApiFailure, get, request, setCsrfToken, whenCsrfStale } from './api'

export interface SessionUser {
  username: string
  role: 'hq_admin' | 'store_manager'
  store_codes: string[]
  csrf_token: string
  expires_at: string
}

export const session = reactive<{ user: SessionUser | null; checked: boolean }>({ user: null, checked: false })

function keep(user: SessionUser | null): SessionUser | null {
  session.user = user
  session.checked = true
  setCsrfToken(user?.csrf_token ?? '')
  return user
}

export async function loadSession(): Promise<SessionUser | null> {
  try {
    // Answers 200 either way (a 401 here would be logged as an error on every first visit).
    const answer = await get<SessionUser & { signed_in: boolean }>('/api/v1/session')
    return keep(answer.signed_in ? answer : null)
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) return keep(null)
    throw error
  }
}

export async function signIn(username: string, password: string): Promise<SessionUser> {
  return keep(await request<SessionUser>('POST', '/api/v1/session', { body: { username, password } }))!
}

export async function signOut(): Promise<void> {
  try {
    await request('DELETE', '/api/v1/session')
  } finally {
    keep(null)
  }
}

export function forget(): void {
  keep(null)
}

export const isHq = () => session.user?.role === 'hq_admin'

/** Where to go after sign-in: only a path inside the console (never another site). */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return '/'
  if (next.startsWith('/sign-in')) return '/'
  return next
}

// A write refused for its CSRF token: the cookie now belongs to a newer sign-in (another tab);
// take that session's token and try once more.
whenCsrfStale(async () => !!(await loadSession().catch(() => null)))
