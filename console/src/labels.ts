export const STORE_STATUS: Record<string, string> = { open: '营业', paused: '暂停', closed: '关闭' }
export const GUIDE_STATUS: Record<string, string> = { active: '在岗', on_leave: '休假', resigned: '离职' }
export const CUSTOMER_STATUS: Record<string, string> = { bound: '已绑定', unbound: '已解绑' }
export const GUIDE_RULES: Record<string, string> = { round_robin: '轮流分配', least_loaded: '最少客户优先', fixed: '固定导购' }
export const JOB_STATUS: Record<string, string> = { queued: '排队', running: '执行中', done: '完成', dead: '失败' }
export const EVENT_STATUS: Record<string, string> = { pending: '待处理', handled: '已处理', ignored: '已忽略', failed: '失败' }

export function when(iso: string | null | undefined): string {
  if (!iso) return '—'
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString('zh-CN', { hour12: false })
}
