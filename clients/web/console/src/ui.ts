// What every screen does the same way: load with a loading, empty and error state; show a
// failure in Chinese from the API's typed error; confirm before an irreversible step.
import { ElMessage, ElMessageBox, ElNotification } from 'element-plus'
import { errorParts } from '@shared/labels'
import { raiseUserErrors, type UserError } from '@shared/graphql'
import { ref, shallowRef, type Ref, type ShallowRef } from 'vue'
import { session } from './session'

export interface Loaded<T> {
  readonly data: ShallowRef<T | null>
  readonly loading: Ref<boolean>
  readonly error: Ref<string | null>
  reload(): Promise<void>
}

/** ``load`` run now and on ``reload``; its failure kept as a Chinese sentence for the screen. */
export function useLoad<T>(load: () => Promise<T>): Loaded<T> {
  const data = shallowRef<T | null>(null)
  const loading = ref(false)
  const error = ref<string | null>(null)
  async function reload(): Promise<void> {
    loading.value = true
    try {
      data.value = await load()
      error.value = null
    } catch (failure) {
      const parts = errorParts(failure)
      error.value = parts.detail ? `${parts.title}: ${parts.detail}` : parts.title
    } finally {
      loading.value = false
    }
  }
  void reload()
  return { data, loading, error, reload }
}

export function showError(failure: unknown): void {
  const parts = errorParts(failure)
  ElMessage({
    type: 'error',
    message: parts.detail ? `${parts.title}。${parts.detail}` : parts.title,
    duration: 8000,
    showClose: true,
    customClass: 'api-error',
  })
}

export function showDone(message: string): void {
  ElMessage({ type: 'success', message, duration: 3000 })
}

/** The payload's first user error, thrown (an expired token sends the person to log in). */
export function check(errors: readonly UserError[]): void {
  raiseUserErrors(errors, () => session.refused())
}

export async function confirm(message: string, title = '请确认'): Promise<boolean> {
  try {
    await ElMessageBox.confirm(message, title, { confirmButtonText: '确定', cancelButtonText: '取消', type: 'warning' })
    return true
  } catch {
    return false
  }
}

export const LIGHT_TEXT: Record<string, string> = {
  GREEN: '正常',
  YELLOW: '临期',
  RED: '超期',
  PAUSED: '计时中止',
}

/** 还剩 3 个工作日, 今日到期, 超期 2 个工作日 */
export function workingDaysText(left: number | null | undefined): string {
  if (left === null || left === undefined) return '—'
  if (left > 0) return `还剩 ${left} 个工作日`
  if (left === 0) return '今日到期'
  return `超期 ${-left} 个工作日`
}

export function money(value: string | number): string {
  return `${Number(value).toLocaleString('zh-CN')} 万元`
}

export function area(value: string | number): string {
  return `${Number(value).toLocaleString('zh-CN')} ㎡`
}

export interface LiveEvent {
  readonly kindLabel: string
  readonly level?: string | null
  readonly levelLabel?: string | null
  readonly message: string
}

/** Toasts for live events without a flood: events arriving together (a scan of the supervisor
 * loop fires many at once) show one by one up to three, else as one summary. */
export function liveToasts(windowMs = 400): (event: LiveEvent) => void {
  let batch: LiveEvent[] = []
  let timer: ReturnType<typeof setTimeout> | null = null
  function flush(): void {
    const events = batch
    batch = []
    timer = null
    const type = (e: LiveEvent): 'error' | 'warning' | 'info' =>
      e.level === 'RED' ? 'error' : e.level === 'YELLOW' ? 'warning' : 'info'
    if (events.length <= 3) {
      for (const e of events) {
        ElNotification({ title: e.levelLabel ?? e.kindLabel, message: e.message, type: type(e), duration: 10000, customClass: 'live-toast' })
      }
      return
    }
    const counts = new Map<string, number>()
    for (const e of events) {
      const label = e.levelLabel ?? e.kindLabel
      counts.set(label, (counts.get(label) ?? 0) + 1)
    }
    const worst = events.find((e) => e.level === 'RED') ?? events.find((e) => e.level === 'YELLOW') ?? events[0]
    ElNotification({
      title: `电子监察: ${events.length} 条新事件`,
      message: [...counts].map(([label, n]) => `${label} ${n} 条`).join(', '),
      type: worst ? type(worst) : 'info',
      duration: 10000,
      customClass: 'live-toast',
    })
  }
  return (event) => {
    batch.push(event)
    timer ??= setTimeout(flush, windowMs)
  }
}
