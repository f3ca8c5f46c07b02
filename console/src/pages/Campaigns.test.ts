// The campaign wizard against mocked answers of the campaigns API (issue 9): the live audience
// count as filters change, the byte counter, and a refused per-customer placeholder.
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import Campaigns from './Campaigns.vue'

vi.mock('@/components/EChart.vue', () => ({ default: { props: ['option'], template: '<div class="chart-stub" />' } }))

function json(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

const previews: unknown[] = []

function service(url: string, init?: RequestInit): Response {
  if (url.startsWith('/api/v1/openapi.json')) return json({ paths: { '/api/v1/campaigns': {}, '/api/v1/audiences/preview': {} } })
  if (url.startsWith('/api/v1/campaigns')) return json({ campaigns: [{ id: 7, name: '闭店不停业关怀', status: 'sent', counts: { targeted: 120, sent: 100 } }] })
  if (url.startsWith('/api/v1/stores')) return json({ stores: [{ code: 'SH01', name: '上海一店' }, { code: 'SH02', name: '上海二店' }] })
  if (url.startsWith('/api/v1/coupon-templates')) return json({ templates: [{ code: 'CARE20', name: '关怀券', benefit: '20元' }] })
  if (url.startsWith('/api/v1/audiences/preview')) {
    const audience = JSON.parse(String(init?.body)).audience
    previews.push(audience)
    const total = audience.stores?.length === 1 ? 40 : 100
    return json({ total, by_store: [{ store_code: 'SH01', count: 40 }, { store_code: 'SH02', count: total - 40 }] })
  }
  return json({ error: { code: 'not_found', message: url } }, 404)
}

async function mountWizard() {
  vi.stubGlobal('fetch', vi.fn(async (url: string, init?: RequestInit) => service(url, init)))
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/', component: Campaigns }, { path: '/c/:id', name: 'campaign', component: Campaigns }] })
  await router.push('/')
  const wrapper = mount(Campaigns, { global: { plugins: [router] }, attachTo: document.body })
  await flushPromises()
  return wrapper
}

afterEach(() => {
  vi.unstubAllGlobals()
  vi.useRealTimers()
  previews.length = 0
  document.body.innerHTML = ''
})

describe('campaign wizard', () => {
  it('lists campaigns from the server', async () => {
    const wrapper = await mountWizard()
    expect(wrapper.text()).toContain('闭店不停业关怀')
    expect(wrapper.text()).toContain('已发送')
  })

  it('shows the live audience count and per-store breakdown as filters change', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const wrapper = await mountWizard()
    await wrapper.get('[data-test=new-campaign]').trigger('click')
    await flushPromises()
    await vi.advanceTimersByTimeAsync(450)
    await flushPromises()
    const count = () => document.querySelector('[data-test=audience-count]')!.textContent!
    expect(count()).toContain('100')
    expect(count()).toContain('上海一店')

    const vm = wrapper.vm as unknown as { $: { setupState: { audienceDraft: { stores: string[] } } } }
    vm.$.setupState.audienceDraft.stores = ['SH01']
    await flushPromises()
    await vi.advanceTimersByTimeAsync(450)
    await flushPromises()
    expect(count()).toContain('40')
    expect(previews.at(-1)).toEqual({ stores: ['SH01'] })
  })

  it('counts bytes and refuses a per-customer placeholder before sending', async () => {
    const wrapper = await mountWizard()
    await wrapper.get('[data-test=new-campaign]').trigger('click')
    await flushPromises()
    const state = (wrapper.vm as unknown as { $: { setupState: { draft: { text: string }; step: number } } }).$.setupState
    state.step = 1
    state.draft.text = '{customer_name}您好'
    await flushPromises()
    expect(document.body.textContent).toContain('21 / 4000 字节')
    // Element Plus shows a field's new error after a short debounce.
    await vi.waitFor(() => expect(document.body.textContent).toContain('{customer_name} 不能使用'))
  })
})

describe('campaign result page', () => {
  const RESULT = {
    id: 7, name: '双十二会员关怀', status: 'sent', audience: { stores: ['SH01'] }, content: { text: '您好' }, benefit: null, send_at: null,
    attribution_days: 7, holdout_percent: 0, created_at: '2026-12-01T00:00:00Z', launched_at: '2026-12-01T00:01:00Z',
    counts: { targeted: 5, held_out: 0, tasks: 2, guides_confirmed: 2, sent: 5, not_friend: 0, over_cap: 0, failed: 0, pending: 0, skipped: 0, cancelled: 0 },
    conversions: { orders: 1, revenue_fen: 12800, coupons_redeemed: 0, conversion_rate: 0.2, holdout_conversion_rate: null, uplift: null },
    by_store: [{ code: 'SH01', targeted: 5, sent: 5, pending: 0, not_friend: 0, over_cap: 0, failed: 0, held_out: 0 }],
    by_guide: [{ code: 'ann', targeted: 3, sent: 3, pending: 0, not_friend: 0, over_cap: 0, failed: 0, held_out: 0 },
      { code: 'bo', targeted: 2, sent: 1, pending: 1, not_friend: 0, over_cap: 0, failed: 0, held_out: 0 }],
  }

  it('shows delivery, conversions and the per-store and per-guide breakdowns the API answers', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => json(RESULT)))
    const { default: Campaign } = await import('./Campaign.vue')
    const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/c/:id', component: Campaign }, { path: '/', name: 'campaigns', component: Campaign }] })
    await router.push('/c/7')
    const wrapper = mount(Campaign, { global: { plugins: [router] }, attachTo: document.body })
    await flushPromises()
    expect(wrapper.get('[data-test=sent]').text()).toBe('5')
    expect(wrapper.get('[data-test=orders]').text()).toBe('1')
    expect(wrapper.text()).toContain('¥128.00')
    expect(wrapper.text()).toContain('20.0%')
    expect(wrapper.get('[data-test=by_store]').text()).toContain('SH01')
    const guides = wrapper.get('[data-test=by_guide]').text()
    expect(guides).toContain('ann')
    expect(guides).toContain('bo')
    expect(wrapper.find('[data-test=action-sync]').exists()).toBe(true)
    expect(wrapper.find('[data-test=action-approve]').exists()).toBe(false)
  })
})
