// Which parts of the API this service has (campaigns and SOPs land later, the customer search
// grows filters): read once from the OpenAPI document, so the console shows "not enabled yet" or
// leaves out a filter instead of calling a missing route or sending a parameter the service refuses.
interface Operation { parameters?: { name: string; in: string }[] }
type Paths = Record<string, Record<string, Operation>>

let document: Promise<Paths> | null = null

function apiDocument(): Promise<Paths> {
  document ??= fetch('/api/v1/openapi.json', { headers: { Accept: 'application/json' } })
    .then((response) => (response.ok ? response.json() : { paths: {} }))
    .then((answer) => (answer.paths ?? {}) as Paths)
    .catch(() => ({}))
  return document
}

export async function apiPaths(): Promise<Set<string>> {
  return new Set(Object.keys(await apiDocument()))
}

export async function hasApi(path: string): Promise<boolean> {
  return (await apiPaths()).has(path)
}

/** The query parameters an operation takes; null when the document does not say (then assume all). */
export async function queryParams(method: string, path: string): Promise<Set<string> | null> {
  const operation = (await apiDocument())[path]?.[method.toLowerCase()]
  if (!operation) return null
  return new Set((operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name))
}

/** Forget the cached document (tests mount pages against different services). */
export function forgetApi(): void {
  document = null
}

/** Whether the service has a route of this shape; `{}` stands for any path parameter ("/api/v1/customers/{}/orders"). */
export async function hasRoute(shape: string): Promise<boolean> {
  const wanted = shape.replace(/\{[^}]*\}/g, '{}')
  for (const path of await apiPaths()) if (path.replace(/\{[^}]*\}/g, '{}') === wanted) return true
  return false
}
