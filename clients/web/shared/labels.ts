// Chinese labels and formatters every web client shares. Labels of domain states come from the
// API (`statusLabel`, `roleLabel`, ...) and from layout-rules.json; these are the words of the
// screens themselves and the formatting of dates, times, sizes and failures.
import { ApiError } from './graphql'

export const ERROR_LABELS: Readonly<Record<string, string>> = {
  INVALID_INPUT: '输入有误',
  INVALID_CREDIT_CODE: '统一社会信用代码有误',
  MISSING_CORE_MATERIALS: '材料不齐, 不能受理',
  CALENDAR_UNKNOWN: '节假日安排尚未公布, 无法计算期限',
  NOT_INVITED: '该部门未受邀参加此次会议',
  MEETING_CLOSED: '会议已结束',
  ALREADY_RATED: '已评价过, 评价不能修改',
  NOT_FOUND: '未找到',
  UNAUTHENTICATED: '登录已失效, 请重新登录',
  INVALID_CREDENTIALS: '用户名或密码错误',
  TOKEN_EXPIRED: '登录已过期, 请重新登录',
  FORBIDDEN: '无权操作',
  WRONG_DEPARTMENT: '不属于本部门',
  INVALID_STATE: '当前状态不允许此操作',
  ALREADY_DECIDED: '已办结, 不能更改',
  CONFLICT: '与他人的操作冲突',
  SYNC_UNAVAILABLE: '同步服务不可用',
  DOCUMENT_REFUSED: '服务器拒收了这项修改',
  TOO_LARGE: '文件或请求过大',
  TYPE_NOT_ALLOWED: '文件类型不允许',
  UPLOAD_EXPIRED: '上传凭证已过期',
  UPLOAD_NOT_RECEIVED: '服务器未收到文件',
  SIZE_MISMATCH: '文件大小不符',
  HASH_MISMATCH: '文件内容校验不符',
  STORAGE_UNAVAILABLE: '文件存储暂时不可用',
  QUERY_TOO_COMPLEX: '查询过于复杂, 请分次查询',
  REQUEST_TIMEOUT: '请求超时, 请稍后重试',
  TOO_MANY_ATTEMPTS: '尝试次数过多, 请稍后再试',
}

/** A failure as a person reads it: the Chinese gist, then the server's own words. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.kind === 'offline' || error.kind === 'unauthenticated') return error.message
    const label = error.code ? ERROR_LABELS[error.code] : undefined
    return label ? `${label}: ${error.message}` : error.message
  }
  if (error instanceof Error) return error.message
  return String(error)
}

export function errorLabel(code: string): string {
  return ERROR_LABELS[code] ?? code
}

const FIELD_LABELS: Record<string, string> = {
  name: '项目名称',
  creditCode: '统一社会信用代码',
  enterpriseName: '企业名称',
  region: '区域',
  regionCode: '区域',
  industryCode: '行业代码',
  landArea: '用地面积',
  floorArea: '建筑面积',
  investment: '总投资',
  agentUsername: '代办员',
  stage: '阶段',
  materials: '材料',
  commitments: '容缺承诺',
  opinion: '意见',
  reason: '原因',
  note: '说明',
  score: '评分',
  comment: '评价内容',
  username: '用户名',
  password: '密码',
  department: '部门',
  departments: '部门',
  uploadId: '上传文件',
  materialType: '材料类型',
}

/** A failure split for a message box: the Chinese title (with the field it concerns) and the
 * server's own explanation as detail (the API's messages are for people but in English). */
export function errorParts(error: unknown): { title: string; detail: string } {
  if (error instanceof ApiError) {
    if (error.kind === 'offline' || error.kind === 'unauthenticated') {
      return { title: error.message, detail: '' }
    }
    const label = (error.code && ERROR_LABELS[error.code]) || '操作未成功'
    const field = error.field ? FIELD_LABELS[error.field] : undefined
    const title = field && !label.includes(field) ? `${label} (${field})` : label
    return { title, detail: error.message }
  }
  return { title: '操作未成功', detail: error instanceof Error ? error.message : String(error) }
}

const WEEKDAYS = ['日', '一', '二', '三', '四', '五', '六']
const CHINA = 'Asia/Shanghai'

function parts(value: string | Date): Record<string, string> {
  const date = typeof value === 'string' ? new Date(value.length === 10 ? `${value}T00:00:00+08:00` : value) : value
  const out: Record<string, string> = {}
  for (const part of new Intl.DateTimeFormat('en-CA', {
    timeZone: CHINA,
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    weekday: 'short',
  }).formatToParts(date)) {
    out[part.type] = part.value
  }
  const weekday = new Date(Date.UTC(Number(out.year), Number(out.month) - 1, Number(out.day))).getUTCDay()
  out.weekdayZh = WEEKDAYS[weekday] ?? ''
  return out
}

/** 2026年3月2日 */
export function formatDate(value: string | Date): string {
  const p = parts(value)
  return `${p.year}年${p.month}月${p.day}日`
}

/** 3月2日 周一 */
export function formatDay(value: string | Date): string {
  const p = parts(value)
  return `${p.month}月${p.day}日 周${p.weekdayZh}`
}

/** 3月2日 09:30 (Beijing time) */
export function formatDateTime(value: string | Date): string {
  const p = parts(value)
  return `${p.month}月${p.day}日 ${p.hour}:${p.minute}`
}

/** 刚刚, 5 分钟前, 2 小时前, 3 天前 */
export function formatAgo(value: string | number | Date, now: number = Date.now()): string {
  const at = typeof value === 'number' ? value : new Date(value).getTime()
  const seconds = Math.max(0, Math.round((now - at) / 1000))
  if (seconds < 60) return '刚刚'
  if (seconds < 3600) return `${Math.floor(seconds / 60)} 分钟前`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} 小时前`
  return `${Math.floor(seconds / 86400)} 天前`
}

/** Calendar days from today (Beijing) to an ISO date: negative when past. */
export function daysUntil(isoDate: string, now: number = Date.now()): number {
  const today = parts(new Date(now))
  const start = Date.UTC(Number(today.year), Number(today.month) - 1, Number(today.day))
  const [y, m, d] = isoDate.slice(0, 10).split('-').map(Number)
  return Math.round((Date.UTC(y ?? 0, (m ?? 1) - 1, d ?? 1) - start) / 86400000)
}

/** 今天到期, 还剩 2 天, 已逾期 3 天 */
export function dueLabel(isoDate: string, now: number = Date.now()): string {
  const days = daysUntil(isoDate, now)
  if (days === 0) return '今天到期'
  if (days > 0) return `还剩 ${days} 天`
  return `已逾期 ${-days} 天`
}

/** 850 KB, 1.2 MB */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

/** Today in Beijing as an ISO date (2026-03-02). */
export function todayIso(now: number = Date.now()): string {
  const p = parts(new Date(now))
  return `${p.year}-${p.month?.padStart(2, '0')}-${p.day?.padStart(2, '0')}`
}

/** An ISO date-time with the Beijing offset, as the documents keep it (2026-03-02T09:30:00+08:00). */
export function beijingIso(now: number = Date.now()): string {
  const shifted = new Date(now + 8 * 3600 * 1000).toISOString().slice(0, 19)
  return `${shifted}+08:00`
}
