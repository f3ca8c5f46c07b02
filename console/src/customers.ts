// The customer search and the customer page's lists, against the customers API: `q` (name, phone,
// external id, member number) and `stage` filters; a customer's orders and the outreach they received.
import { ApiFailure, get } from './api'
import { describe } from './errors'

export interface CustomerRow {
  id: number; external_userid: string; name: string; guide_userid: string | null; store_code: string | null
  channel_code: string | null; status: string; tags: string[]; bound_at: string | null
  stage?: string | null; member_no?: string | null
}

/** The API refused a query parameter it does not know (an older service): 400 naming that field. */
export function refusedField(error: unknown, field: string): boolean {
  return error instanceof ApiFailure && error.status === 400 && error.problems.some((p) => p.field === field)
}

/** A search that names exactly one customer opens them: their external id or member number, or a phone number. */
export function exactHit(rows: CustomerRow[], text: string): CustomerRow | null {
  if (rows.length !== 1) return null
  const [row] = rows
  return row.external_userid === text || row.member_no === text || /^1\d{10}$/.test(text) ? row : null
}

export interface Order { order_no: string; store_code: string | null; amount_fen: number; status: string; created_at: string; paid_at?: string | null }
export interface Outreach {
  source: 'campaign' | 'sop' | string; ref: string | number; name: string; step_key: string | null; guide_userid: string | null
  planned_at: string | null; status: string; sent_at: string | null
}

/** One of the customer page's lists: a 404 (a service without that list yet) is an empty list, not an error. */
export async function optionalItems<T>(path: string): Promise<{ items: T[]; problem: string }> {
  try {
    return { items: (await get<{ items: T[] }>(path)).items ?? [], problem: '' }
  } catch (error) {
    if (error instanceof ApiFailure && (error.status === 404 || error.status === 405)) return { items: [], problem: '' }
    return { items: [], problem: describe(error) }
  }
}
