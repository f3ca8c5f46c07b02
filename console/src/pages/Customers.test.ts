// The customer search and the customer page against mocked answers of the customers API: the
// search box and stage filter sent as `q` and `stage`, the stage and member number shown, an exact
// hit opening the customer, a service without the list (404) shown as an empty state, and the
// customer's orders and outreach (a 404 there is an empty list).
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import Customer from './Customer.vue'
import Customers from './Customers.vue'
import { forgetApi } from '@/features'

function json(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

const ROWS = [
  { id: 2, external_userid: 'wmLi', name: '李女士', guide_userid: 'ann', store_code: 'SH01', channel_code: 'poster', status: 'bound', tags: ['门店海报'], bound_at: '2026-11-30T02:00:00Z', stage: 'repeat', member_no: 'M000123' },
  { id: 1, external_userid: 'wmWang', name: '王先生', guide_userid: 'ann', store_code: 'SH01', channel_code: null, status: 'bound', tags: [], bound_at: '2026-11-29T02:00:00Z', stage: 'new_friend', member_no: null },
]
const OPENAPI = { paths: {
  '/api/v1/customers': { get: { parameters: ['q', 'stage', 'store_code', 'before_id', 'limit'].map((name) => ({ name, in: 'query' })) } },
  '/api/v1/customers/{external_userid}/orders': { get: {} },
  '/api/v1/customers/{external_userid}/outreach': { get: {} },
} }
const DETAIL = { external_userid: 'wmLi', name: '李女士', avatar: null, status: 'bound', tags: [], guide: null, store: null, channel: null, bindings: [], first_bound_at: null }

let listAnswer: (url: URL) => Response
const asked: URL[] = []

function service(raw: string): Response {
  const url = new URL(raw, 'http://console')
  asked.push(url)
  if (url.pathname === '/api/v1/openapi.json') return json(OPENAPI)
  if (url.pathname === '/api/v1/customers') return listAnswer(url)
  if (url.pathname === '/api/v1/customers/wmLi') return json(DETAIL)
  if (url.pathname === '/api/v1/customers/wmLi/orders') {
    return json({ items: [{ order_no: 'SO-20261130-1', store_code: 'SH01', amount_fen: 12800, status: 'paid', created_at: '2026-11-30T03:00:00Z' }] })
  }
  if (url.pathname === '/api/v1/customers/wmLi/outreach') {
    return json({ items: [
      { source: 'campaign', ref: 7, name: '双十二预热', step_key: null, guide_userid: 'ann', planned_at: '2026-11-30T01:00:00Z', status: 'sent', sent_at: '2026-11-30T01:05:00Z' },
      { source: 'sop', ref: 'onboarding', name: '新好友7天培育', step_key: 'd3', guide_userid: 'ann', planned_at: '2026-12-02T11:30:00Z', status: 'planned', sent_at: null },
    ] })
  }
  if (url.pathname === '/api/v1/members') return json({ members: [] })
  if (url.pathname.startsWith('/api/v1/')) return json({ stores: [], guides: [], channels: [] })
  return json({ error: { code: 'not_found', message: raw } }, 404)
}

async function mountAt(path: string) {
  vi.stubGlobal('fetch', vi.fn(async (url: string) => service(url)))
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [{ path: '/customers', name: 'customers', component: Customers }, { path: '/customers/:id', name: 'customer', component: Customer }],
  })
  await router.push(path)
  const wrapper = mount(path === '/customers' || path.startsWith('/customers?') ? Customers : Customer, { global: { plugins: [router] }, attachTo: document.body })
  await flushPromises()
  return { wrapper, router }
}

afterEach(() => {
  vi.unstubAllGlobals()
  vi.resetModules()
  forgetApi()
  asked.length = 0
  document.body.innerHTML = ''
})

describe('customer search', () => {
  it('sends the search text and the stage, and shows each row’s stage and member number', async () => {
    listAnswer = (url) => json({ customers: url.searchParams.get('stage') === 'repeat' ? ROWS.slice(0, 1) : ROWS })
    const { wrapper } = await mountAt('/customers')
    expect(wrapper.get('[data-test=customers]').text()).toContain('复购')
    expect(wrapper.get('[data-test=customers]').text()).toContain('M000123')
    expect(wrapper.get('[data-test=customers]').text()).toContain('新好友')

    const state = (wrapper.vm as unknown as { $: { setupState: { filters: Record<string, string>; lookup: string; search: () => Promise<void>; find: () => Promise<void> } } }).$.setupState
    state.filters.stage = 'repeat'
    await state.search()
    await flushPromises()
    const last = asked.filter((u) => u.pathname === '/api/v1/customers').at(-1)!
    expect(last.searchParams.get('stage')).toBe('repeat')
    expect(wrapper.get('[data-test=customers]').text()).not.toContain('王先生')

    state.filters.stage = ''
    state.lookup = '王'
    await state.find()
    await flushPromises()
    const named = asked.filter((u) => u.pathname === '/api/v1/customers').at(-1)!
    expect(named.searchParams.get('q')).toBe('王')
  })

  it('opens the customer when the search names exactly one (by member number)', async () => {
    listAnswer = (url) => json({ customers: url.searchParams.get('q') === 'M000123' ? ROWS.slice(0, 1) : ROWS })
    const { wrapper, router } = await mountAt('/customers')
    const state = (wrapper.vm as unknown as { $: { setupState: { lookup: string; find: () => Promise<void> } } }).$.setupState
    state.lookup = 'M000123'
    await state.find()
    await flushPromises()
    expect(router.currentRoute.value.fullPath).toBe('/customers/wmLi')
  })

  it('shows an empty state when the service has no customer list (404)', async () => {
    listAnswer = () => json({ error: { code: 'not_found', message: 'no route' } }, 404)
    const { wrapper } = await mountAt('/customers')
    expect(wrapper.find('[data-test=customers-missing]').exists()).toBe(true)
    expect(wrapper.text()).toContain('客户列表尚未在服务端启用')
    expect(wrapper.find('[data-test=customers]').exists()).toBe(false)
  })
})

describe('customer page', () => {
  it('shows the orders and the outreach the customer received', async () => {
    const { wrapper } = await mountAt('/customers/wmLi')
    const orders = wrapper.get('[data-test=orders]').text()
    expect(orders).toContain('SO-20261130-1')
    expect(orders).toContain('¥128.00')
    expect(orders).toContain('已支付')
    const outreach = wrapper.get('[data-test=outreach]').text()
    expect(outreach).toContain('群发活动 · 双十二预热')
    expect(outreach).toContain('SOP · 新好友7天培育（d3）')
    expect(outreach).toContain('已送达')
    expect(outreach).toContain('待发送')
  })

  it('shows empty lists, not an error, when the service has no orders or outreach route (404)', async () => {
    vi.stubGlobal('fetch', vi.fn(async (url: string) => (url.includes('/orders') || url.includes('/outreach') ? json({ error: { code: 'not_found', message: 'x' } }, 404) : service(url))))
    const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/customers/:id', name: 'customer', component: Customer }] })
    await router.push('/customers/wmLi')
    const wrapper = mount(Customer, { global: { plugins: [router] }, attachTo: document.body })
    await flushPromises()
    expect(wrapper.get('[data-test=customer-name]').text()).toBe('李女士')
    expect(wrapper.get('[data-test=orders]').text()).toContain('暂无订单')
    expect(wrapper.get('[data-test=outreach]').text()).toContain('暂无触达记录')
    expect(wrapper.find('[data-test=orders] .el-alert').exists()).toBe(false)
  })

  it('does not ask for orders or outreach when the API document does not offer them, and says so', async () => {
    const bare = { paths: { '/api/v1/customers': OPENAPI.paths['/api/v1/customers'] } }
    vi.stubGlobal('fetch', vi.fn(async (url: string) => (url.startsWith('/api/v1/openapi.json') ? json(bare) : service(url))))
    const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/customers/:id', name: 'customer', component: Customer }] })
    await router.push('/customers/wmLi')
    const wrapper = mount(Customer, { global: { plugins: [router] }, attachTo: document.body })
    await flushPromises()
    expect(wrapper.get('[data-test=customer-name]').text()).toBe('李女士')
    expect(asked.some((url) => url.pathname.endsWith('/orders') || url.pathname.endsWith('/outreach'))).toBe(false)
    expect(wrapper.get('[data-test=orders]').text()).toContain('本服务尚未提供订单记录')
    expect(wrapper.get('[data-test=outreach]').text()).toContain('本服务尚未提供触达记录')
  })
})
