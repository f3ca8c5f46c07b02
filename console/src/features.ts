// Which parts of the API this service has (campaigns and SOPs land later): read once from the
// OpenAPI document, so the console shows "not enabled yet" instead of calling a missing route.
let paths: Promise<Set<string>> | null = null

export function apiPaths(): Promise<Set<string>> {
  paths ??= fetch('/api/v1/openapi.json', { headers: { Accept: 'application/json' } })
    .then((response) => (response.ok ? response.json() : { paths: {} }))
    .then((document) => new Set(Object.keys(document.paths ?? {})))
    .catch(() => new Set<string>())
  return paths
}

export async function hasApi(path: string): Promise<boolean> {
  return (await apiPaths()).has(path)
}
