// The campaign wizard's own logic, against the campaigns API of issue 9 (sop/): the audience
// language, the live preview, content rules a group send imposes, and the result's figures.
import { post } from './api'
import { utf8Bytes } from './text'

export interface Audience {
  stores?: string[]
  guides?: string[]
  channels?: string[]
  tags_any?: string[]
  tags_all?: string[]
  tags_none?: string[]
  stages?: string[]
  gender?: 'male' | 'female' | 'unknown'
  added_within_days?: number
  purchased_within_days?: number
  no_purchase_for_days?: number
  points_min?: number
  points_max?: number
  has_unused_coupon?: boolean
  coupon_expires_within_days?: number
  birthday_within_days?: number
}

/** The audience as the API wants it: only fields the person set (empty lists and blanks left out). */
export function compactAudience(draft: Record<string, unknown>): Audience {
  const audience: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(draft)) {
    if (value === null || value === undefined || value === '') continue
    if (Array.isArray(value) && !value.length) continue
    audience[name] = value
  }
  return audience as Audience
}

export interface Count { key: string; count: number }
export interface Preview { total: number; byStore: Count[]; byGuide: Count[]; excluded: Count[] }

function counts(raw: unknown, keyNames: string[]): Count[] {
  if (!raw) return []
  if (Array.isArray(raw)) {
    return raw.map((item) => {
      const row = item as Record<string, unknown>
      const key = keyNames.map((k) => row[k]).find((v) => v !== undefined && v !== null)
      const count = row.count ?? row.total ?? row.customers ?? 0
      return { key: String(key ?? '—'), count: Number(count) }
    })
  }
  if (typeof raw === 'object') return Object.entries(raw as Record<string, number>).map(([key, count]) => ({ key, count: Number(count) }))
  return []
}

/** Read the preview answer whether breakdowns come as lists of rows or as {key: count} maps. */
export function readPreview(answer: Record<string, unknown>): Preview {
  return {
    total: Number(answer.total ?? 0),
    byStore: counts(answer.by_store ?? answer.per_store, ['store_code', 'store', 'code', 'key']).sort((a, b) => b.count - a.count),
    byGuide: counts(answer.by_guide ?? answer.per_guide, ['guide_userid', 'guide', 'userid', 'key']).sort((a, b) => b.count - a.count),
    excluded: counts(answer.excluded, ['reason', 'key']),
  }
}

export async function previewAudience(audience: Audience): Promise<Preview> {
  return readPreview(await post<Record<string, unknown>>('/api/v1/audiences/preview', { audience }))
}

/** Calls `run` once the input has been still for `wait` ms; only the newest answer is kept. */
export function debounceLatest<A, R>(run: (arg: A) => Promise<R>, wait: number, apply: (result: R) => void, fail: (error: unknown) => void) {
  let timer: ReturnType<typeof setTimeout> | undefined
  let generation = 0
  return (arg: A) => {
    clearTimeout(timer)
    const mine = ++generation
    timer = setTimeout(() => {
      run(arg).then((r) => mine === generation && apply(r), (e) => mine === generation && fail(e))
    }, wait)
  }
}

export const TEXT_LIMIT_BYTES = 4000
export const SENDER_PLACEHOLDERS = ['guide_name', 'store_name']

/** What is wrong with the text before the server says it (the server stays the truth). */
export function contentProblems(text: string): string[] {
  const problems: string[] = []
  if (!text.trim()) problems.push('请填写消息内容')
  if (utf8Bytes(text) > TEXT_LIMIT_BYTES) problems.push(`内容超过 ${TEXT_LIMIT_BYTES} 字节`)
  for (const match of text.matchAll(/\{(\w+)\}/g)) {
    if (!SENDER_PLACEHOLDERS.includes(match[1])) {
      problems.push(`{${match[1]}} 不能使用：一次群发任务所有客户收到同一段文字，只能用 {guide_name}、{store_name}`)
    }
  }
  return problems
}

/** The text as one recipient's phone shows it, for the preview bubble. */
export function renderForPreview(text: string, sender: { guide_name: string; store_name: string }): string {
  return text.replace(/\{(guide_name|store_name)\}/g, (_, name: 'guide_name' | 'store_name') => sender[name])
}

export interface CampaignDraft {
  name: string
  audience: Audience
  text: string
  coupon_template_code: string
  send_at: string | null
  attribution_days: number
  holdout_percent: number
}

export function campaignBody(draft: CampaignDraft): Record<string, unknown> {
  return {
    name: draft.name,
    audience: draft.audience,
    content: { text: draft.text },
    ...(draft.coupon_template_code ? { benefit: { coupon_template_code: draft.coupon_template_code } } : {}),
    send_at: draft.send_at || null,
    attribution_days: draft.attribution_days,
    holdout_percent: draft.holdout_percent,
  }
}

/** Which actions the result page offers in each state of the life cycle. */
export function actionsFor(status: string, role: string): string[] {
  const actions: string[] = []
  if (status === 'draft' && role === 'hq_admin') actions.push('approve')
  if (status === 'approved') actions.push('launch')
  if (['sending', 'sent', 'scheduled'].includes(status)) actions.push('remind', 'sync')
  if (['draft', 'approved', 'scheduled', 'sending', 'sent'].includes(status)) actions.push('cancel')
  return actions
}

export const CAMPAIGN_STATUS: Record<string, string> = {
  draft: '草稿', approved: '已审批', scheduled: '待发送', sending: '发送中', sent: '已发送', finished: '已结束', cancelled: '已取消',
}

/** The field a campaign error names, mapped to the wizard step that shows it. */
export function stepOfField(field: string): number {
  if (field.startsWith('audience') || field === 'name') return 0
  if (field.startsWith('content')) return 1
  if (field.startsWith('benefit')) return 2
  return 3
}

const DELIVERY: [string, string][] = [['sent', '已送达'], ['pending', '待导购确认'], ['not_friend', '非好友'], ['over_cap', '超频'], ['failed', '失败'], ['held_out', '对照组']]

/** The delivery pie's slices: only outcomes that happened (empty slices would pile their labels on one spot). */
export function deliverySlices(counts: Record<string, number> | undefined): { name: string; value: number }[] {
  return DELIVERY.map(([key, name]) => ({ name, value: counts?.[key] ?? 0 })).filter((slice) => slice.value > 0)
}
