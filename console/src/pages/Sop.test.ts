// The SOP page against mocked answers of the SOP API (sop/engine/api.py): the template list with
// status and version, pause, the editor's document and the API's 422 shown at the field it names,
// the 14-day dry-run and completion per store.
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import { session } from '@/session'
import { blankDraft, completionBy, sopTotals, documentOf, draftOf, dryRunChart, knownFields, nextDays, placeErrors } from '@/sop'
import Sop from './Sop.vue'

vi.mock('@/components/EChart.vue', () => ({ default: { props: ['option'], template: '<div class="chart-stub" />' } }))

function json(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

const ONBOARDING = {
  code: 'onboarding', name: '新好友7天培育', trigger: { event: 'friend_added' }, exit_on: ['purchased'], window: { from: '09:00', to: '21:00' },
  audience: { stores: ['SH01'] },
  steps: [
    { key: 'd1', after: { days: 1, hours: 0, minutes: 0 }, at: '10:00', reach: 'group_send', content: { text: '我是{guide_name}' } },
    { key: 'd3', after: { days: 3, hours: 0, minutes: 0 }, at: '19:30', reach: 'guide_push', when: { has_unused_coupon: true },
      content: { text: '新人券', attachments: [{ msgtype: 'image', image: { pic_url: 'https://x/y.png' } }] },
      sku: [{ code: 'SKU1', name: '羊毛大衣', price_fen: 129900, url: 'https://shop/1' }], benefit: { coupon_template_code: 'CARE20' } },
  ],
}
const SOP = { code: 'onboarding', name: '新好友7天培育', status: 'active', version: 2, versions: 2, document: ONBOARDING, created_at: '2026-11-01T00:00:00Z', updated_at: '2026-11-30T00:00:00Z' }
const calls: { method: string; url: string; body: unknown }[] = []
let saveAnswer: () => Response

function service(url: string, init?: RequestInit): Response {
  const method = init?.method ?? 'GET'
  calls.push({ method, url, body: init?.body ? JSON.parse(String(init.body)) : undefined })
  if (url.startsWith('/api/v1/openapi.json')) return json({ paths: { '/api/v1/sops': {} } })
  if (url === '/api/v1/sops' && method === 'GET') return json({ sops: [SOP] })
  if (url === '/api/v1/sops/onboarding/pause') return json({ ...SOP, status: 'paused' })
  if (url === '/api/v1/sops/onboarding/dry-run') {
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date())
    return json({ code: 'onboarding', days: 14, rows: [{ day: today, step: 'd1', store: 'SH01', customers: 12 }, { day: today, step: 'd3', store: 'BJ01', customers: 5 }] })
  }
  if (url.startsWith('/api/v1/stats/sop')) {
    return json({ code: 'onboarding', group_by: 'store', steps: [
      { step: 'd1', store: 'SH01', due: 10, pushed: 10, confirmed: 8, sent: 8, tasks_done: 0, waiting_for_guide: 0, skipped: 0, exited: 0, held_out: 0, conversions: 2 },
      { step: 'd3', store: 'SH01', due: 10, pushed: 10, confirmed: 0, sent: 0, tasks_done: 6, waiting_for_guide: 0, skipped: 0, exited: 0, held_out: 0, conversions: 1 },
    ] })
  }
  if (url.startsWith('/api/v1/coupon-templates')) return json({ templates: [{ code: 'CARE20', name: '关怀券', benefit: '20元' }] })
  if (url.startsWith('/api/v1/sops')) return saveAnswer()
  return json({ error: { code: 'not_found', message: url } }, 404)
}

async function mountPage() {
  session.user = { username: 'hq', role: 'hq_admin', store_codes: [] } as never
  vi.stubGlobal('fetch', vi.fn(async (url: string, init?: RequestInit) => service(url, init)))
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/sop', component: Sop }] })
  await router.push('/sop')
  const wrapper = mount(Sop, { global: { plugins: [router] }, attachTo: document.body })
  await flushPromises()
  return wrapper
}

afterEach(() => {
  vi.unstubAllGlobals()
  calls.length = 0
  session.user = null
  document.body.innerHTML = ''
})

describe('SOP logic', () => {
  it('edits a document without losing what the form does not show', () => {
    const document = documentOf(draftOf(ONBOARDING))
    expect(document).toEqual(ONBOARDING)
  })

  it('writes a new template from the blank draft with only what was filled', () => {
    const draft = blankDraft()
    Object.assign(draft, { code: 'birthday', name: '生日关怀', event: 'birthday', days_before: 3, days: 9 })
    draft.steps[0].text = '生日快乐'
    draft.steps[0].sku.push({ code: 'S1', name: '蛋糕', price_yuan: 88.5, url: '' })
    expect(documentOf(draft)).toEqual({
      code: 'birthday', name: '生日关怀', trigger: { event: 'birthday', days_before: 3 },
      steps: [{ key: 'd1', after: { days: 1, hours: 0, minutes: 0 }, at: '10:00', reach: 'group_send', content: { text: '生日快乐' }, sku: [{ code: 'S1', name: '蛋糕', price_fen: 8850 }] }],
    })
  })

  it('places an error at the most precise field that encloses it', () => {
    const draft = draftOf(ONBOARDING)
    const { placed, unplaced } = placeErrors(
      { 'steps[1].after': '时间顺序有误', 'steps[0].content.text': '未知的占位符', 'steps[1].sku[0].price_fen': '不能小于 0', 'trigger.event': '取值不在可选范围内', audience: '不支持的字段' },
      knownFields(draft),
    )
    expect(placed).toEqual({ 'steps[1].after': '时间顺序有误', 'steps[0].content': '未知的占位符', 'steps[1].sku[0].price_fen': '不能小于 0', trigger: '取值不在可选范围内' })
    expect(unplaced).toEqual(['audience：不支持的字段'])
  })

  it('stacks the dry run per step over fourteen days, for one store or all', () => {
    const days = nextDays('2026-12-30', 14)
    expect(days[0]).toBe('2026-12-30')
    expect(days[2]).toBe('2027-01-01')
    expect(days).toHaveLength(14)
    const rows = [{ day: '2026-12-30', step: 'd1', store: 'SH01', customers: 3 }, { day: '2026-12-30', step: 'd1', store: 'BJ01', customers: 2 }, { day: '2027-01-01', step: 'd3', store: 'SH01', customers: 4 }]
    const all = dryRunChart(rows, days, ['d1', 'd3'])
    expect(all.series.map((s) => s.data.slice(0, 3))).toEqual([[5, 0, 0], [0, 0, 4]])
    expect(dryRunChart(rows, days, ['d1', 'd3'], 'BJ01').series[0].data[0]).toBe(2)
  })

  it('sums completion per store over the steps', () => {
    const [row] = completionBy([
      { step: 'd1', store: 'SH01', due: 10, pushed: 10, confirmed: 8, sent: 8, tasks_done: 0, waiting_for_guide: 0, skipped: 0, exited: 0, held_out: 0, conversions: 2 },
      { step: 'd3', store: 'SH01', due: 10, pushed: 10, confirmed: 0, sent: 0, tasks_done: 6, waiting_for_guide: 0, skipped: 0, exited: 0, held_out: 0, conversions: 1 },
    ], 'store')
    expect(row).toMatchObject({ key: 'SH01', due: 20, sent: 8, tasks_done: 6, conversions: 3, rate: 0.7 })
  })

  it('sums a template for the dashboard, with no rate before anything fell due', () => {
    const step = { step: 'd1', store: 'SH01', due: 4, pushed: 4, confirmed: 3, sent: 3, tasks_done: 0, waiting_for_guide: 0, skipped: 0, exited: 0, held_out: 0, conversions: 1 }
    expect(sopTotals([step, { ...step, store: 'BJ01', sent: 0, tasks_done: 1 }])).toEqual({ due: 8, completed: 4, conversions: 2, rate: 0.5 })
    expect(sopTotals([])).toEqual({ due: 0, completed: 0, conversions: 0, rate: null })
  })
})

describe('SOP page', () => {
  it('lists templates with status and version, draws the dry run and completion, and pauses', async () => {
    const wrapper = await mountPage()
    const list = wrapper.get('[data-test=sops]').text()
    expect(list).toContain('新好友7天培育')
    expect(list).toContain('第 2 版')
    expect(list).toContain('运行中')
    expect(wrapper.get('[data-test=dry-run]').text()).toContain('共 17 人次')
    expect(calls.find((c) => c.url.endsWith('/dry-run'))?.body).toEqual({ days: 14 })
    expect(wrapper.get('[data-test=completion]').text()).toContain('70.0%')
    await wrapper.get('[data-test=pause-onboarding]').trigger('click')
    await flushPromises()
    expect(calls.some((c) => c.method === 'POST' && c.url === '/api/v1/sops/onboarding/pause')).toBe(true)
  })

  it('shows the API’s 422 at the field it names and keeps the editor open', async () => {
    const wrapper = await mountPage()
    saveAnswer = () => json({ error: { code: 'invalid_template', message: 'steps[1].after: offsets out of order', details: [{ field: 'steps[1].after', problem: "offsets out of order: must come after step 'd1'" }] } }, 422)
    await wrapper.get('[data-test=edit-onboarding]').trigger('click')
    await flushPromises()
    ;(document.querySelector('[data-test=save-sop]') as HTMLButtonElement).click()
    await flushPromises()
    const save = calls.find((c) => c.method === 'PUT')!
    expect(save.url).toBe('/api/v1/sops/onboarding')
    expect(save.body).toEqual(ONBOARDING)
    await flushPromises()
    const step = document.querySelector('[data-test=step-1]')!
    // Element Plus marks the item and shows the message under it (after its enter transition).
    expect([...step.querySelectorAll('.el-form-item.is-error > .el-form-item__label')].map((l) => l.textContent)).toEqual(['触发后'])
    await vi.waitFor(() => expect(step.querySelector('.el-form-item.is-error')?.textContent).toContain('时间顺序有误：必须晚于步骤 d1'), { timeout: 5000 })
    expect(document.querySelector('[data-test=step-0] .el-form-item.is-error')).toBeNull()
    expect(document.querySelector('[data-test=sop-editor]')?.textContent).toContain('编辑 SOP')

    // Saved as a new version: the list is read again and the selected template's dry run redrawn.
    saveAnswer = () => json({ ...SOP, version: 3, versions: 3 })
    const dryRuns = calls.filter((c) => c.url.endsWith('/dry-run')).length
    ;(document.querySelector('[data-test=save-sop]') as HTMLButtonElement).click()
    await flushPromises()
    expect(calls.filter((c) => c.url.endsWith('/dry-run')).length).toBe(dryRuns + 1)
  })
})
