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

// Lifecycle stages (sop/audience.py Stage, bot/members lifecycle).
export const STAGES: Record<string, string> = {
  new_friend: '新好友', member: '会员', first_purchase: '首购', repeat: '复购', loyal: '忠诚', at_risk: '流失风险', dormant: '沉睡',
}
export const ORDER_STATUS: Record<string, string> = { paid: '已支付', refunded: '已退款' }
export const OUTREACH_SOURCE: Record<string, string> = { campaign: '群发活动', sop: 'SOP' }
export const OUTREACH_STATUS: Record<string, string> = {
  planned: '待发送', pending: '待导购确认', sent: '已送达', not_friend: '非好友', over_cap: '超频未发', failed: '失败',
  skipped: '已跳过', cancelled: '已取消', held_out: '对照组（未发）',
}

export function yuan(fen: number | null | undefined): string {
  return fen === null || fen === undefined ? '—' : `¥${(fen / 100).toFixed(2)}`
}
