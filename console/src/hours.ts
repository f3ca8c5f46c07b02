// Opening/working hours as people type them — "mon-fri 10:00-22:00; sat,sun 09:00-23:00" — and back.
// The same short form the CSV importer reads (bot/stores/hours.py); the server checks the ranges.
export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const
export type Hours = Partial<Record<(typeof DAYS)[number], string[]>>

export class HoursError extends Error {}

function expandDays(text: string): string[] {
  const days: string[] = []
  for (const token of text.toLowerCase().split(',')) {
    const [first, last] = token.split('-')
    const start = DAYS.indexOf(first as never)
    const end = DAYS.indexOf((last ?? first) as never)
    if (start < 0 || end < 0) throw new HoursError(`无法识别的星期：${token}（使用 mon…sun）`)
    for (let i = start; ; i = (i + 1) % 7) {
      days.push(DAYS[i])
      if (i === end) break
    }
  }
  return days
}

/** Empty text is null (always open / always working). */
export function parseHours(text: string): Hours | null {
  const trimmed = text.trim()
  if (!trimmed) return null
  const hours: Record<string, string[]> = {}
  for (const part of trimmed.split(/[;；]/).map((p) => p.trim()).filter(Boolean)) {
    const [daysText, ...rest] = part.split(/\s+/)
    const ranges = rest.join('').split(/[,，]/).filter(Boolean)
    if (!ranges.length) throw new HoursError(`「${part}」：先写星期再写时段，例如 mon-fri 10:00-22:00`)
    for (const day of expandDays(daysText)) (hours[day] ??= []).push(...ranges)
  }
  return hours as Hours
}

/** Days with the same ranges are written together: {mon..fri: 10-22} → "mon-fri 10:00-22:00". */
export function formatHours(hours: Hours | null | undefined): string {
  if (!hours) return ''
  const parts: string[] = []
  let index = 0
  while (index < DAYS.length) {
    const ranges = hours[DAYS[index]]
    if (!ranges?.length) {
      index++
      continue
    }
    let end = index
    while (end + 1 < DAYS.length && hours[DAYS[end + 1]]?.join(',') === ranges.join(',')) end++
    const days = end === index ? DAYS[index] : `${DAYS[index]}-${DAYS[end]}`
    parts.push(`${days} ${ranges.join(',')}`)
    index = end + 1
  }
  return parts.join('; ')
}
