// The one way the console talks to the service: same-origin fetch with the session cookie, the
// CSRF token on every state-changing call, the API's error shape turned into an ApiFailure.

export interface Problem {
  field?: string
  line?: number
  problem: string
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message)
  }

  /** Row- and field-level problems the API named (validation, references, CSV lines). */
  get problems(): Problem[] {
    return Array.isArray(this.details) ? (this.details as Problem[]) : []
  }
}

type Query = Record<string, string | number | boolean | null | undefined>

let csrfToken = ''
let onSignedOut: (() => void) | null = null
let refreshCsrf: (() => Promise<boolean>) | null = null

export function setCsrfToken(token: string): void {
  csrfToken = token
}

/** Called when the session has ended mid-use (the router sends the person to sign-in and back). */
export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler
}

/** How to fetch the current token again (another tab may have signed in anew, replacing the session). */
export function whenCsrfStale(handler: () => Promise<boolean>): void {
  refreshCsrf = handler
}

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value))
  }
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

export async function request<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}, retried = false): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken
  let response: Response
  try {
    response = await fetch(buildUrl(path, options.query), {
      method,
      headers,
      credentials: 'same-origin',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    })
  } catch {
    throw new ApiFailure(0, 'network', '无法连接服务，请检查网络后重试')
  }
  if (response.status === 204) return undefined as T
  const payload = await response.json().catch(() => null)
  if (!response.ok) {
    const error = payload?.error ?? {}
    const failure = new ApiFailure(response.status, error.code ?? 'http_error', error.message ?? response.statusText, error.details ?? null)
    if (response.status === 401 && path !== '/api/v1/session' && onSignedOut) onSignedOut()
    if (failure.code === 'csrf_failed' && !retried && refreshCsrf && (await refreshCsrf())) {
      return request<T>(method, path, options, true)
    }
    throw failure
  }
  return payload as T
}

export const get = <T>(path: string, query?: Query) => request<T>('GET', path, { query })
export const post = <T>(path: string, body: unknown = {}) => request<T>('POST', path, { body })
export const patch = <T>(path: string, body: unknown) => request<T>('PATCH', path, { body })
export const put = <T>(path: string, body: unknown) => request<T>('PUT', path, { body })
