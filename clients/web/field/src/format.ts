// Dates and times as people read them on the tablet (Beijing time, Chinese order).
const FULL = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false,
})
const TIME = new Intl.DateTimeFormat('zh-CN', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })

export function formatDate(iso: string | null | undefined, withTime = false): string {
  if (!iso) return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  return withTime ? FULL.format(date) : iso.slice(0, 10)
}

export function formatTime(iso: string | null | undefined): string {
  return iso ? TIME.format(new Date(iso)) : ''
}

/** Today in Beijing as YYYY-MM-DD. */
export function today(now: Date = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(now)
}

/** What a failed request means for the person, in Chinese (``offline`` when the network is out). */
export function failureText(error: unknown, offline: string): string {
  if (typeof error === 'object' && error !== null && (error as { kind?: string }).kind === 'offline') return offline
  return error instanceof Error ? error.message : String(error)
}
