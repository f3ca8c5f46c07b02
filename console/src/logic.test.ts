import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiFailure, buildUrl, request, setCsrfToken, whenCsrfStale, whenSignedOut } from './api'
import { actionsFor, campaignBody, compactAudience, contentProblems, debounceLatest, deliverySlices, previewAudience, readPreview, renderForPreview, stepOfField } from './campaign'
import { describe as describeError, fieldErrors, translate } from './errors'
import { formatHours, HoursError, parseHours } from './hours'
import { menuFor } from './menu'
import { useCursorPager } from './pager'
import { safeNext } from './session'
import { chinaDay, daysBetween, lastDays, mapLimited, newFriendsPerDay, percent, standings, totals, type LeaderRow } from './stats'
import { samePath, utf8Bytes } from './text'

function answer(status: number, body: unknown) {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

function mockFetch(...answers: Response[]) {
  const fetchMock = vi.fn()
  for (const a of answers) fetchMock.mockResolvedValueOnce(a)
  vi.stubGlobal('fetch', fetchMock)
  return fetchMock
}

afterEach(() => {
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

describe('api', () => {
  it('leaves blank query values out', () => {
    expect(buildUrl('/api/v1/customers', { store_code: 'SH001', tag: '', before_id: undefined, limit: 21 })).toBe('/api/v1/customers?store_code=SH001&limit=21')
    expect(buildUrl('/api/v1/stores')).toBe('/api/v1/stores')
  })

  it('sends the CSRF token on writes and not on reads', async () => {
    const fetchMock = mockFetch(answer(201, { code: 'X' }), answer(200, { stores: [] }))
    setCsrfToken('tok-1')
    await request('POST', '/api/v1/stores', { body: { code: 'X' } })
    await request('GET', '/api/v1/stores')
    const [, write] = fetchMock.mock.calls[0]
    expect(write.headers['X-CSRF-Token']).toBe('tok-1')
    expect(write.headers['Content-Type']).toBe('application/json')
    expect(write.body).toBe('{"code":"X"}')
    expect(write.credentials).toBe('same-origin')
    expect(fetchMock.mock.calls[1][1].headers['X-CSRF-Token']).toBeUndefined()
  })

  it('turns the error shape into an ApiFailure with its problems', async () => {
    mockFetch(answer(400, { error: { code: 'invalid_request', message: 'invalid body', details: [{ field: 'code', problem: 'Field required' }] } }))
    const failure = (await request('POST', '/api/v1/stores', { body: {} }).catch((e: unknown) => e)) as ApiFailure
    expect(failure).toBeInstanceOf(ApiFailure)
    expect(failure.status).toBe(400)
    expect(failure.problems).toEqual([{ field: 'code', problem: 'Field required' }])
  })

  it('tells the router when the session has ended, but not for a failed sign-in', async () => {
    const ended = vi.fn()
    whenSignedOut(ended)
    mockFetch(answer(401, { error: { code: 'session_expired', message: 'x' } }), answer(401, { error: { code: 'invalid_credentials', message: 'x' } }))
    await request('GET', '/api/v1/stores').catch(() => undefined)
    expect(ended).toHaveBeenCalledTimes(1)
    await request('POST', '/api/v1/session', { body: {} }).catch(() => undefined)
    expect(ended).toHaveBeenCalledTimes(1)
  })

  it('retries a write once with a fresh CSRF token when the session changed in another tab', async () => {
    const refused = { error: { code: 'csrf_failed', message: 'x' } }
    const fetchMock = mockFetch(answer(403, refused), answer(201, { code: 'X' }), answer(403, refused), answer(403, refused))
    setCsrfToken('old')
    whenCsrfStale(async () => {
      setCsrfToken('new')
      return true
    })
    expect(await request('POST', '/api/v1/stores', { body: {} })).toEqual({ code: 'X' })
    expect(fetchMock.mock.calls[1][1].headers['X-CSRF-Token']).toBe('new')
    const failure = (await request('POST', '/api/v1/stores', { body: {} }).catch((e: unknown) => e)) as ApiFailure
    expect(failure.code).toBe('csrf_failed') // only once
    expect(fetchMock).toHaveBeenCalledTimes(4)
  })

  it('says the network is down in Chinese', async () => {
    vi.stubGlobal('fetch', vi.fn().mockRejectedValue(new TypeError('Failed to fetch')))
    const failure = (await request('GET', '/api/v1/stores').catch((e: unknown) => e)) as ApiFailure
    expect(failure.code).toBe('network')
    expect(describeError(failure)).toContain('无法连接服务')
  })
})

describe('errors', () => {
  it('translates pydantic messages', () => {
    expect(translate('Field required')).toBe('必填')
    expect(translate('String should have at most 32 characters')).toBe('最多 32 个字符')
    expect(translate('Value error, no store \'NOPE\'')).toBe('门店 NOPE 不存在')
    expect(translate('something new')).toBe('something new')
    expect(translate('2 bad row(s) in 3; nothing imported')).toBe('3 行中有 2 行有误，整份文件未导入')
    expect(translate('code: String should have at least 1 character')).toBe('code：至少 1 个字符')
  })

  it('puts each problem at its field, with aliases and joined duplicates', () => {
    const failure = new ApiFailure(422, 'unknown_reference', 'x', [
      { field: 'fallback.store_code', problem: "no store 'NOPE'" },
      { field: 'name', problem: 'Field required' },
      { field: 'name', problem: 'String should have at least 1 character' },
    ])
    expect(fieldErrors(failure, { 'fallback.store_code': 'fallback_store' })).toEqual({
      fallback_store: '门店 NOPE 不存在', name: '必填；至少 1 个字符',
    })
  })

  it('maps conflicts to the field that caused them', () => {
    expect(fieldErrors(new ApiFailure(409, 'store_exists', 'x'))).toEqual({ code: '门店编码已存在' })
    expect(describeError(new ApiFailure(423, 'account_locked', 'x'))).toContain('锁定')
  })
})

describe('form errors', () => {
  it('shows field problems at their fields and whole-form problems above the form', async () => {
    const { useServerErrors } = await import('./form')
    const form = useServerErrors({ value_fen: 'value_yuan' })
    form.show(new ApiFailure(400, 'invalid_request', 'invalid body', [
      { field: 'value_fen', problem: 'Input should be greater than or equal to 0' },
      { field: '', problem: 'Value error, a cash coupon needs value_fen > 0' },
    ]), ['value_yuan'])
    expect(form.errors.value).toEqual({ value_yuan: '不能小于 0' })
    expect(form.general.value).toBe('提交的内容有误：a cash coupon needs value_fen > 0')
    form.show(new ApiFailure(400, 'invalid_request', 'invalid body', [{ field: 'name', problem: 'Field required' }]), ['name'])
    expect(form.general.value).toBe('')
  })
})

describe('sign-in return path', () => {
  it('only goes back inside the console', () => {
    expect(safeNext('/customers?store_code=SH001')).toBe('/customers?store_code=SH001')
    for (const bad of ['//evil.example', 'https://evil.example', '/\\evil', undefined, ['/x'], '/sign-in?next=/x']) {
      expect(safeNext(bad)).toBe('/')
    }
  })
})

describe('menu', () => {
  it('has the page names of the issue, without 运维 for store managers', () => {
    expect(menuFor('hq_admin').map((m) => m.title)).toEqual(['数据看板', '门店与导购', '渠道与聚合码', '客户', '会员与券', '群发活动', 'SOP', '运维'])
    expect(menuFor('store_manager').map((m) => m.title)).not.toContain('运维')
  })
})

describe('hours', () => {
  it('reads the short form and writes it back', () => {
    const hours = parseHours('mon-fri 10:00-22:00; sat,sun 09:00-23:00')
    expect(hours).toEqual({
      mon: ['10:00-22:00'], tue: ['10:00-22:00'], wed: ['10:00-22:00'], thu: ['10:00-22:00'], fri: ['10:00-22:00'],
      sat: ['09:00-23:00'], sun: ['09:00-23:00'],
    })
    expect(formatHours(hours)).toBe('mon-fri 10:00-22:00; sat-sun 09:00-23:00')
  })

  it('wraps day ranges over the week end, and blank means always', () => {
    expect(Object.keys(parseHours('sat-mon 10:00-20:00')!)).toEqual(['sat', 'sun', 'mon'])
    expect(parseHours('  ')).toBeNull()
    expect(formatHours(null)).toBe('')
  })

  it('names what it cannot read', () => {
    expect(() => parseHours('weekday 10:00-22:00')).toThrow(HoursError)
    expect(() => parseHours('mon')).toThrow(/先写星期再写时段/)
  })
})

describe('stats', () => {
  const row = (key: string, scans: number, adds: number) => ({ key, scans, located: scans, chosen: 0, adds, deletes: 1, net_friends: adds - 1, conversion: null })

  it('sums funnel rows', () => {
    expect(totals([row('a', 10, 4), row('b', 5, 2)])).toEqual({ scans: 15, located: 15, chosen: 0, adds: 6, deletes: 2, net_friends: 4 })
  })

  it('lists days inclusively across a month end', () => {
    expect(daysBetween('2026-11-29', '2026-12-02')).toEqual(['2026-11-29', '2026-11-30', '2026-12-01', '2026-12-02'])
    expect(daysBetween('2026-12-02', '2026-12-01')).toEqual([])
  })

  it('uses China days', () => {
    expect(chinaDay(new Date('2026-12-01T16:30:00Z'))).toBe('2026-12-02')
    expect(lastDays(7, new Date('2026-12-01T16:30:00Z'))).toEqual(['2026-11-26', '2026-12-02'])
  })

  it('ranks the PK board over the range, fewer losses first on a tie', () => {
    const rows: LeaderRow[] = [
      { period_start: '2026-12-01', rank: 1, guide_userid: 'ann', guide_name: '安娜', store_code: 'SH001', new_friends: 3, lost: 1 },
      { period_start: '2026-12-02', rank: 1, guide_userid: 'ann', guide_name: '安娜', store_code: 'SH001', new_friends: 2, lost: 0 },
      { period_start: '2026-12-02', rank: 2, guide_userid: 'bo', guide_name: '薄波', store_code: 'SH001', new_friends: 5, lost: 0 },
      { period_start: '2026-12-02', rank: 3, guide_userid: 'cai', guide_name: '蔡晨', store_code: 'SH002', new_friends: 1, lost: 0 },
    ]
    expect(standings(rows).map((s) => [s.rank, s.guide_userid, s.new_friends])).toEqual([[1, 'bo', 5], [2, 'ann', 5], [3, 'cai', 1]])
    expect(newFriendsPerDay(rows, ['2026-11-30', '2026-12-01', '2026-12-02'])).toEqual([0, 3, 8])
  })

  it('formats rates and runs work a few at a time in order', async () => {
    expect(percent(0.1234)).toBe('12.3%')
    expect(percent(null)).toBe('—')
    let running = 0
    let most = 0
    const out = await mapLimited([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      most = Math.max(most, ++running)
      await new Promise((r) => setTimeout(r, 5))
      running--
      return n * 2
    })
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14])
    expect(most).toBe(3)
  })
})

describe('text', () => {
  it('counts UTF-8 bytes as WeCom does', () => {
    expect(utf8Bytes('abc')).toBe(3)
    expect(utf8Bytes('导购')).toBe(6)
    expect(utf8Bytes('😀')).toBe(4)
  })

  it('keeps links on the console origin', () => {
    expect(samePath('http://127.0.0.1:8080/qr/abc.png')).toBe('/qr/abc.png')
    expect(samePath('/qr/abc.svg?size=2')).toBe('/qr/abc.svg?size=2')
  })
})

describe('cursor pager', () => {
  const rows = Array.from({ length: 45 }, (_, i) => ({ id: 100 - i }))
  const fetchPage = vi.fn(async (cursor: string | undefined, limit: number) =>
    rows.filter((r) => cursor === undefined || r.id < Number(cursor)).slice(0, limit))

  it('walks forward and back with the API cursor, one page on the server at a time', async () => {
    const pager = useCursorPager(fetchPage, (r) => String(r.id), 20)
    await pager.reload()
    expect(pager.rows.value.map((r) => r.id).slice(0, 2)).toEqual([100, 99])
    expect(pager.hasNext.value).toBe(true)
    expect(fetchPage).toHaveBeenLastCalledWith(undefined, 21)
    await pager.next()
    expect(pager.rows.value[0].id).toBe(80)
    await pager.next()
    expect(pager.rows.value.map((r) => r.id)).toEqual([60, 59, 58, 57, 56])
    expect(pager.hasNext.value).toBe(false)
    await pager.previous()
    expect(pager.page.value).toBe(2)
    expect(pager.rows.value[0].id).toBe(80)
    expect(fetchPage).toHaveBeenLastCalledWith('81', 21)
  })

  it('shows a failure as an empty page with the reason', async () => {
    const pager = useCursorPager(async () => { throw new ApiFailure(403, 'forbidden', 'x') }, () => '', 20)
    await pager.reload()
    expect(pager.rows.value).toEqual([])
    expect(pager.error.value).toBe('没有权限执行此操作')
    expect(pager.loading.value).toBe(false)
  })
})

describe('campaign wizard', () => {
  it('sends only the audience fields that were set', () => {
    expect(compactAudience({ stores: ['SH01'], tags_any: [], gender: '', points_min: 0, added_within_days: undefined, has_unused_coupon: false }))
      .toEqual({ stores: ['SH01'], points_min: 0, has_unused_coupon: false })
  })

  it('reads the preview whether breakdowns are lists or maps', () => {
    expect(readPreview({ total: 12, by_store: [{ store_code: 'SH01', count: 2 }, { store_code: 'SH02', count: 10 }], excluded: { not_friend: 3 } }))
      .toEqual({ total: 12, byStore: [{ key: 'SH02', count: 10 }, { key: 'SH01', count: 2 }], byGuide: [], excluded: [{ key: 'not_friend', count: 3 }] })
    expect(readPreview({ total: 1, per_guide: { ann: 1 } }).byGuide).toEqual([{ key: 'ann', count: 1 }])
  })

  it('asks the preview endpoint with the audience and the CSRF token', async () => {
    const fetchMock = mockFetch(answer(200, { total: 7, by_store: [{ store_code: 'SH01', count: 7 }] }))
    setCsrfToken('tok-2')
    const preview = await previewAudience({ stores: ['SH01'] })
    expect(preview.total).toBe(7)
    const [url, init] = fetchMock.mock.calls[0]
    expect(url).toBe('/api/v1/audiences/preview')
    expect(JSON.parse(init.body)).toEqual({ audience: { stores: ['SH01'] } })
    expect(init.headers['X-CSRF-Token']).toBe('tok-2')
  })

  it('keeps only the newest preview while filters change', async () => {
    vi.useFakeTimers()
    const seen: number[] = []
    const run = vi.fn(async (n: number) => n)
    const refresh = debounceLatest(run, 300, (n) => seen.push(n), () => undefined)
    refresh(1)
    refresh(2)
    await vi.advanceTimersByTimeAsync(299)
    refresh(3)
    await vi.advanceTimersByTimeAsync(300)
    expect(run).toHaveBeenCalledTimes(1)
    expect(seen).toEqual([3])
  })

  it('refuses per-customer placeholders and long texts before sending', () => {
    expect(contentProblems('您好，我是{guide_name}，{store_name}欢迎您')).toEqual([])
    expect(contentProblems('{customer_name}您好')[0]).toContain('{customer_name} 不能使用')
    expect(contentProblems('导'.repeat(1334))).toContain('内容超过 4000 字节')
    expect(contentProblems('  ')).toContain('请填写消息内容')
    expect(renderForPreview('我是{guide_name}@{store_name}', { guide_name: '小王', store_name: 'SH' })).toBe('我是小王@SH')
  })

  it('builds the body issue 9 documents', () => {
    expect(campaignBody({ name: '闭店不停业关怀', audience: { stores: ['SH01'] }, text: '您好', coupon_template_code: 'CARE20', send_at: null, attribution_days: 7, holdout_percent: 0 }))
      .toEqual({ name: '闭店不停业关怀', audience: { stores: ['SH01'] }, content: { text: '您好' }, benefit: { coupon_template_code: 'CARE20' }, send_at: null, attribution_days: 7, holdout_percent: 0 })
    expect(campaignBody({ name: 'x', audience: {}, text: 't', coupon_template_code: '', send_at: '', attribution_days: 7, holdout_percent: 10 })).not.toHaveProperty('benefit')
  })

  it('offers the actions of each state, approval for HQ only, and sends field errors to their step', () => {
    expect(actionsFor('draft', 'hq_admin')).toEqual(['approve', 'cancel'])
    expect(actionsFor('draft', 'store_manager')).toEqual(['cancel'])
    expect(actionsFor('approved', 'hq_admin')).toEqual(['launch', 'cancel'])
    expect(actionsFor('sent', 'hq_admin')).toEqual(['remind', 'sync', 'cancel'])
    expect(actionsFor('finished', 'hq_admin')).toEqual([])
    expect([stepOfField('audience.stores'), stepOfField('content.text'), stepOfField('benefit.coupon_template_code'), stepOfField('send_at')]).toEqual([0, 1, 2, 3])
  })
})

describe('campaign delivery pie', () => {
  it('draws only the outcomes that happened, named in Chinese', () => {
    expect(deliverySlices({ sent: 5, pending: 0, failed: 1 })).toEqual([{ name: '已送达', value: 5 }, { name: '失败', value: 1 }])
    expect(deliverySlices(undefined)).toEqual([])
  })
})
