// The server is the truth for validation: its problems are shown at the field they name, in Chinese.
import { ApiFailure, type Problem } from './api'

const PHRASES: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^Field required$/, () => '必填'],
  [/^String should have at least (\d+) characters?$/, (m) => `至少 ${m[1]} 个字符`],
  [/^String should have at most (\d+) characters?$/, (m) => `最多 ${m[1]} 个字符`],
  [/^String should match pattern/, () => '只能包含字母、数字、- 和 _'],
  [/^Input should be greater than or equal to (\S+)$/, (m) => `不能小于 ${m[1]}`],
  [/^Input should be less than or equal to (\S+)$/, (m) => `不能大于 ${m[1]}`],
  [/^Input should be a valid (number|integer)/, () => '请输入数字'],
  [/^Extra inputs are not permitted$/, () => '不支持的字段'],
  [/^Value error, (.*)$/, (m) => translate(m[1])],
  [/^no (store|channel|guide) '(.+)'$/, (m) => `${{ store: '门店', channel: '渠道', guide: '导购' }[m[1]]} ${m[2]} 不存在`],
  [/^wrong username or password$/, () => '用户名或密码错误'],
  [/^(\d+) bad row\(s\) in (\d+); nothing imported$/, (m) => `${m[2]} 行中有 ${m[1]} 行有误，整份文件未导入`],
  // The SOP engine's own rules (sop/engine/document.py).
  [/^a step needs content/, () => '每一步需要内容（文字或附件）'],
  [/^unknown placeholder \{(.+)\}$/, (m) => `未知的占位符 {${m[1]}}`],
  [/^\{(\w+)\} is per customer/, (m) => `{${m[1]}} 因客户而异：只有「导购一对一任务」可以使用`],
  [/^offsets out of order: must come after step '(.+)'$/, (m) => `时间顺序有误：必须晚于步骤 ${m[1]}`],
  [/^no active coupon template '(.+)'$/, (m) => `没有启用中的券模板 ${m[1]}`],
  [/^(\w+) needs (days_before|stage|days)$/, (m) => `该触发条件需要填写${{ days_before: '提前天数', stage: '阶段', days: '天数' }[m[2]]}`],
  [/^schedule needs dates, weekdays or monthdays$/, () => '定时触发需要日期、星期或每月几号'],
  [/^to must be after from$/, () => '结束时间必须晚于开始时间'],
  [/^step keys must be unique$/, () => '步骤标识不能重复'],
  [/^exists$/, () => '编码已存在'],
  [/^unknown$/, () => '不存在'],
  [/^Input should be '/, () => '取值不在可选范围内'],
  [/^([\w.]+): (.+)$/, (m) => `${m[1]}：${translate(m[2])}`],
]

export function translate(message: string): string {
  for (const [pattern, render] of PHRASES) {
    const match = message.match(pattern)
    if (match) return render(match)
  }
  return message
}

const MESSAGES: Record<string, string> = {
  store_exists: '门店编码已存在',
  guide_exists: '导购账号已存在',
  channel_exists: '渠道编码已存在',
  forbidden: '没有权限执行此操作',
  csrf_failed: '页面已过期，请刷新后重试',
  account_locked: '密码错误次数过多，账号已临时锁定，请稍后再试',
  invalid_credentials: '用户名或密码错误',
  session_expired: '登录已过期，请重新登录',
  not_found: '未找到',
  invalid_request: '提交的内容有误',
  invalid_template: '模板有误，请按提示修改',
}

/** A one-line message for a failure (the general error, not the field ones). */
export function describe(error: unknown): string {
  if (error instanceof ApiFailure) return MESSAGES[error.code] ?? translate(error.message)
  return error instanceof Error ? error.message : String(error)
}

/** { field path → Chinese problem } from a 4xx; the API names fields as `a.b` (pydantic locations). */
export function fieldErrors(error: unknown, aliases: Record<string, string> = {}): Record<string, string> {
  const found: Record<string, string> = {}
  if (!(error instanceof ApiFailure)) return found
  for (const problem of error.problems as Problem[]) {
    if (!problem.field) continue
    const field = aliases[problem.field] ?? problem.field
    found[field] = found[field] ? `${found[field]}；${translate(problem.problem)}` : translate(problem.problem)
  }
  for (const [code, field] of Object.entries({ store_exists: 'code', channel_exists: 'code', guide_exists: 'userid' })) {
    if (error.code === code) found[aliases[field] ?? field] = MESSAGES[code]
  }
  return found
}
