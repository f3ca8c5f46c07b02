// The SOP page's own logic, against the SOP API (sop/engine/api.py, document.py): the editable
// draft of a template and the document it becomes, where a refused field's error belongs in the
// form, the 14-day dry-run chart, and completion per store or guide.

export const TRIGGERS: Record<string, string> = {
  friend_added: '添加好友', member_joined: '成为会员', first_purchase: '首次购买', purchase: '每次购买',
  coupon_issued: '领到优惠券', coupon_expiring: '优惠券即将到期', birthday: '生日', stage_entered: '进入生命周期阶段',
  no_purchase_for: 'N 天未购买', schedule: '定时（日期 / 星期 / 每月几号）',
}
export const EXITS: Record<string, string> = { purchased: '已购买', unfriended: '删除好友', coupon_redeemed: '券已核销', stage_changed: '阶段变化' }
export const REACHES: Record<string, string> = { group_send: '群发（导购确认后发出）', guide_push: '推送导购转发', guide_task: '导购一对一任务' }
export { STAGES } from './labels'
export const SOP_STATUS: Record<string, string> = { active: '运行中', paused: '已暂停' }
/** Which trigger field each trigger needs (the API refuses the template without it). */
export const TRIGGER_NEEDS: Record<string, 'days_before' | 'stage' | 'days' | 'schedule'> = {
  coupon_expiring: 'days_before', birthday: 'days_before', stage_entered: 'stage', no_purchase_for: 'days', schedule: 'schedule',
}

export interface SkuDraft { code: string; name: string; price_yuan: number | undefined; url: string }
export interface StepDraft {
  key: string
  days: number
  hours: number
  minutes: number
  at: string
  reach: string
  text: string
  sku: SkuDraft[]
  coupon_template_code: string
  /** What the form does not edit (attachments, per-store overrides, the step's audience) is kept as it was. */
  kept: Record<string, unknown>
}
export interface SopDraft {
  code: string
  name: string
  description: string
  event: string
  days_before: number | undefined
  stage: string
  days: number | undefined
  dates: string[]
  weekdays: number[]
  monthdays: number[]
  exit_on: string[]
  window_from: string
  window_to: string
  holdout_percent: number
  kept: Record<string, unknown>
  steps: StepDraft[]
}

type Doc = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** A template as the API answers it (GET /api/v1/sops). */
export interface SopTemplate { code: string; name: string; status: string; version: number; versions: number; document: Doc; updated_at: string }

export function blankStep(index: number): StepDraft {
  return { key: `d${index + 1}`, days: index + 1, hours: 0, minutes: 0, at: '10:00', reach: 'group_send', text: '', sku: [], coupon_template_code: '', kept: {} }
}

export function blankDraft(): SopDraft {
  return {
    code: '', name: '', description: '', event: 'friend_added', days_before: undefined, stage: '', days: undefined,
    dates: [], weekdays: [], monthdays: [], exit_on: [], window_from: '', window_to: '', holdout_percent: 0, kept: {}, steps: [blankStep(0)],
  }
}

/** The form's draft of a stored document (GET /api/v1/sops answers `document`). */
export function draftOf(document: Doc): SopDraft {
  const trigger = document.trigger ?? {}
  const { code, name, description, trigger: _t, exit_on, window, holdout_percent, steps, ...kept } = document
  return {
    code: code ?? '', name: name ?? '', description: description ?? '', event: trigger.event ?? 'friend_added',
    days_before: trigger.days_before ?? undefined, stage: trigger.stage ?? '', days: trigger.days ?? undefined,
    dates: trigger.dates ?? [], weekdays: trigger.weekdays ?? [], monthdays: trigger.monthdays ?? [],
    exit_on: exit_on ?? [], window_from: window?.from ?? '', window_to: window?.to ?? '', holdout_percent: holdout_percent ?? 0,
    kept,
    steps: (steps ?? []).map((step: Doc) => {
      const { key, after, at, reach, content, sku, benefit, ...rest } = step
      const { text, ...contentRest } = content ?? {}
      return {
        key, days: after?.days ?? 0, hours: after?.hours ?? 0, minutes: after?.minutes ?? 0, at: at ?? '', reach: reach ?? 'group_send',
        text: text ?? '', coupon_template_code: benefit?.coupon_template_code ?? '',
        sku: (sku ?? []).map((s: Doc) => ({ code: s.code, name: s.name, price_yuan: s.price_fen == null ? undefined : s.price_fen / 100, url: s.url ?? '' })),
        kept: { ...rest, ...(Object.keys(contentRest).length ? { content: contentRest } : {}) },
      }
    }),
  }
}

/** The document the API takes (POST /api/v1/sops, PUT /api/v1/sops/{code}); blanks are left out. */
export function documentOf(draft: SopDraft): Doc {
  const trigger: Doc = { event: draft.event }
  const needs = TRIGGER_NEEDS[draft.event]
  if (needs === 'days_before' && draft.days_before !== undefined && draft.days_before !== null) trigger.days_before = draft.days_before
  if (needs === 'stage' && draft.stage) trigger.stage = draft.stage
  if (needs === 'days' && draft.days !== undefined && draft.days !== null) trigger.days = draft.days
  if (needs === 'schedule') {
    if (draft.dates.length) trigger.dates = draft.dates
    if (draft.weekdays.length) trigger.weekdays = draft.weekdays
    if (draft.monthdays.length) trigger.monthdays = draft.monthdays
  }
  const document: Doc = { ...draft.kept, code: draft.code, name: draft.name, trigger }
  if (draft.description) document.description = draft.description
  if (draft.exit_on.length) document.exit_on = draft.exit_on
  if (draft.window_from || draft.window_to) document.window = { from: draft.window_from, to: draft.window_to }
  if (draft.holdout_percent) document.holdout_percent = draft.holdout_percent
  document.steps = draft.steps.map((step) => {
    const kept = { ...step.kept } as Doc
    const content: Doc = { ...(kept.content ?? {}) }
    delete kept.content
    if (step.text) content.text = step.text
    const out: Doc = { ...kept, key: step.key, after: { days: step.days ?? 0, hours: step.hours ?? 0, minutes: step.minutes ?? 0 }, reach: step.reach }
    if (step.at) out.at = step.at
    if (Object.keys(content).length) out.content = content
    if (step.sku.length) {
      out.sku = step.sku.map((s) => {
        const sku: Doc = { code: s.code, name: s.name }
        if (s.price_yuan !== undefined && s.price_yuan !== null) sku.price_fen = Math.round(s.price_yuan * 100)
        if (s.url) sku.url = s.url
        return sku
      })
    }
    if (step.coupon_template_code) out.benefit = { coupon_template_code: step.coupon_template_code }
    return out
  })
  return document
}

/** "第 3 天 10:00" / "2 小时 30 分钟后": when a step goes out after the trigger. */
export function timingOf(step: { days: number; hours: number; minutes: number; at: string }): string {
  const parts: string[] = []
  if (step.at) return `第 ${step.days} 天 ${step.at}`
  if (step.days) parts.push(`${step.days} 天`)
  if (step.hours) parts.push(`${step.hours} 小时`)
  if (step.minutes) parts.push(`${step.minutes} 分钟`)
  return parts.length ? `${parts.join(' ')}后` : '立即'
}

/**
 * Where each server error is shown: at the most precise form field that encloses the field the
 * API named (`steps[1].after.days` is shown at `steps[1].after`); what no field encloses goes above.
 */
export function placeErrors(found: Record<string, string>, known: string[]): { placed: Record<string, string>; unplaced: string[] } {
  const placed: Record<string, string> = {}
  const unplaced: string[] = []
  for (const [field, text] of Object.entries(found)) {
    const home = known
      .filter((k) => field === k || field.startsWith(`${k}.`) || field.startsWith(`${k}[`))
      .sort((a, b) => b.length - a.length)[0]
    if (home === undefined) unplaced.push(`${field}：${text}`)
    else placed[home] = placed[home] ? `${placed[home]}；${text}` : text
  }
  return { placed, unplaced }
}

/** The form fields of a draft, as the API names them (what placeErrors can place an error at). */
export function knownFields(draft: SopDraft): string[] {
  const fields = ['code', 'name', 'description', 'trigger', 'exit_on', 'window', 'holdout_percent', 'steps']
  draft.steps.forEach((step, i) => {
    const s = `steps[${i}]`
    fields.push(s, `${s}.key`, `${s}.after`, `${s}.at`, `${s}.reach`, `${s}.content`, `${s}.sku`, `${s}.benefit`)
    step.sku.forEach((_, j) => fields.push(`${s}.sku[${j}].code`, `${s}.sku[${j}].name`, `${s}.sku[${j}].price_fen`, `${s}.sku[${j}].url`))
  })
  return fields
}

export interface DryRunRow { day: string; step: string; store: string | null; customers: number }

/** The dry run as a stacked bar chart: one bar per day, one colour per step (optionally one store). */
export function dryRunChart(rows: DryRunRow[], days: string[], stepKeys: string[], store = '') {
  const chosen = store ? rows.filter((r) => (r.store ?? '') === store) : rows
  const series = stepKeys.map((step) => ({
    name: step, type: 'bar', stack: 'customers', barMaxWidth: 36,
    data: days.map((day) => chosen.filter((r) => r.day === day && r.step === step).reduce((n, r) => n + r.customers, 0)),
  }))
  return {
    tooltip: { trigger: 'axis' },
    legend: { bottom: 0 },
    grid: { left: 40, right: 16, top: 16, bottom: 48 },
    xAxis: { type: 'category', data: days.map((d) => d.slice(5)) },
    yAxis: { type: 'value', minInterval: 1 },
    series,
  }
}

/** The next `count` days from `first` (YYYY-MM-DD), the dry run's x axis. */
export function nextDays(first: string, count: number): string[] {
  const [y, m, d] = first.split('-').map(Number)
  return Array.from({ length: count }, (_, i) => new Date(Date.UTC(y, m - 1, d + i)).toISOString().slice(0, 10))
}

export interface StepStats {
  step: string; due: number; pushed: number; confirmed: number; sent: number; tasks_done: number
  waiting_for_guide: number; skipped: number; exited: number; held_out: number; conversions: number
  store?: string | null; guide?: string | null
}

/** Completed = sent by WeCom or done by the guide, out of the runs that fell due. */
export function completion(row: StepStats): number | null {
  return row.due ? (row.sent + row.tasks_done) / row.due : null
}

/** Per store (or guide): the steps summed into one row with its completion rate. */
export function completionBy(rows: StepStats[], groupBy: 'store' | 'guide') {
  const groups = new Map<string, StepStats>()
  for (const row of rows) {
    const key = String(row[groupBy] ?? '—')
    const sum = groups.get(key) ?? { step: '', due: 0, pushed: 0, confirmed: 0, sent: 0, tasks_done: 0, waiting_for_guide: 0, skipped: 0, exited: 0, held_out: 0, conversions: 0 }
    for (const name of ['due', 'pushed', 'confirmed', 'sent', 'tasks_done', 'waiting_for_guide', 'skipped', 'exited', 'held_out', 'conversions'] as const) {
      sum[name] += row[name] ?? 0
    }
    groups.set(key, sum)
  }
  return [...groups.entries()].map(([key, sum]) => ({ key, ...sum, rate: completion(sum) })).sort((a, b) => b.due - a.due)
}

/** One template's steps summed (the dashboard's line per SOP). */
export function sopTotals(rows: StepStats[]): { due: number; completed: number; conversions: number; rate: number | null } {
  let due = 0
  let completed = 0
  let conversions = 0
  for (const row of rows) {
    due += row.due ?? 0
    completed += (row.sent ?? 0) + (row.tasks_done ?? 0)
    conversions += row.conversions ?? 0
  }
  return { due, completed, conversions, rate: due ? completed / due : null }
}
