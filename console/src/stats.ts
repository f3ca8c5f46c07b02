// The dashboard's arithmetic on what /api/v1/stats answers (kept out of the charts to be tested).

export interface FunnelRow {
  key: string | null
  scans: number
  located: number
  chosen: number
  adds: number
  deletes: number
  net_friends: number
  conversion: number | null
}

export interface LeaderRow {
  period_start: string
  rank: number
  guide_userid: string
  guide_name: string
  store_code: string | null
  new_friends: number
  lost: number
}

export const FUNNEL_STEPS = [
  ['scans', '扫码'],
  ['located', '定位'],
  ['adds', '加好友'],
  ['net_friends', '净增好友'],
] as const

export function totals(rows: FunnelRow[]): Omit<FunnelRow, 'key' | 'conversion'> {
  const sum = { scans: 0, located: 0, chosen: 0, adds: 0, deletes: 0, net_friends: 0 }
  for (const row of rows) {
    for (const name of Object.keys(sum) as (keyof typeof sum)[]) sum[name] += row[name]
  }
  return sum
}

/** Every day from since to until inclusive, as YYYY-MM-DD (dates only: no time-zone drift). */
export function daysBetween(since: string, until: string): string[] {
  const days: string[] = []
  const day = new Date(`${since}T00:00:00Z`)
  const last = new Date(`${until}T00:00:00Z`)
  while (day <= last && days.length < 400) {
    days.push(day.toISOString().slice(0, 10))
    day.setUTCDate(day.getUTCDate() + 1)
  }
  return days
}

/** YYYY-MM-DD of `date` in China time (the service's days are China days). */
export function chinaDay(date: Date): string {
  return new Date(date.getTime() + 8 * 3600_000).toISOString().slice(0, 10)
}

export function lastDays(count: number, today: Date = new Date()): [string, string] {
  const until = chinaDay(today)
  const since = chinaDay(new Date(today.getTime() - (count - 1) * 86_400_000))
  return [since, until]
}

export interface GuideStanding {
  rank: number
  guide_userid: string
  guide_name: string
  store_code: string | null
  new_friends: number
  lost: number
}

/** The PK board over the whole range: per-day rows summed per guide, ranked by new friends (fewer losses first). */
export function standings(rows: LeaderRow[]): GuideStanding[] {
  const byGuide = new Map<string, GuideStanding>()
  for (const row of rows) {
    const entry = byGuide.get(row.guide_userid) ?? {
      rank: 0, guide_userid: row.guide_userid, guide_name: row.guide_name, store_code: row.store_code, new_friends: 0, lost: 0,
    }
    entry.new_friends += row.new_friends
    entry.lost += row.lost
    byGuide.set(row.guide_userid, entry)
  }
  const ranked = [...byGuide.values()].sort(
    (a, b) => b.new_friends - a.new_friends || a.lost - b.lost || a.guide_userid.localeCompare(b.guide_userid),
  )
  ranked.forEach((entry, index) => (entry.rank = index + 1))
  return ranked
}

/** New friends per day over the range (days without any add are 0, so the line does not skip). */
export function newFriendsPerDay(rows: LeaderRow[], days: string[]): number[] {
  const perDay = new Map<string, number>()
  for (const row of rows) perDay.set(row.period_start, (perDay.get(row.period_start) ?? 0) + row.new_friends)
  return days.map((day) => perDay.get(day) ?? 0)
}

export function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : `${(value * 100).toFixed(1)}%`
}

/** Run `work` over items with at most `limit` in flight (the per-day funnel calls). */
export async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  async function lane() {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return results
}
