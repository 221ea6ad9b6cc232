// The console's one session and live connection (one per browser tab).
import { CONSOLE_SESSION_KEY } from '@shared/keys'
import { createLive } from '@shared/live'
import { createSession } from '@shared/session'
import { computed } from 'vue'

export const session = createSession({ storageKey: CONSOLE_SESSION_KEY })
export const api = session.api
export const live = createLive({ token: () => session.token() })

export const viewer = computed(() => (session.expired.value ? null : (session.state.value?.viewer ?? null)))
export const role = computed(() => viewer.value?.role ?? null)

/** The first screen of each role. */
export function homeOf(value: string | null): string {
  switch (value) {
    case 'WINDOW_CLERK':
      return '/projects'
    case 'REVIEWER':
      return '/queue'
    case 'SUPERVISOR':
      return '/board'
    case 'APPLICANT':
      return '/mine'
    default:
      return '/projects'
  }
}
