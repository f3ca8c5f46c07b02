// The menu: the page names; 运维 is for HQ only (its API is hq_admin only).
export interface MenuEntry {
  name: string
  title: string
  hqOnly?: boolean
}

export const MENU: MenuEntry[] = [
  { name: 'dashboard', title: '数据看板' },
  { name: 'stores', title: '门店与导购' },
  { name: 'channels', title: '渠道与聚合码' },
  { name: 'customers', title: '客户' },
  { name: 'members', title: '会员与券' },
  { name: 'campaigns', title: '群发活动' },
  { name: 'sop', title: 'SOP' },
  { name: 'ops', title: '运维', hqOnly: true },
]

export function menuFor(role: string | undefined): MenuEntry[] {
  return MENU.filter((entry) => !entry.hqOnly || role === 'hq_admin')
}

export const ROLE_NAMES: Record<string, string> = { hq_admin: '总部管理员', store_manager: '店长' }
