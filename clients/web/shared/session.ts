// Login and the session every web client shares: the bearer token, when it expires and who it
// stands for, kept in localStorage so that it lasts across reloads and days offline. An
// expired session keeps everything local; the user logs in again to sync.
import { computed, ref, type ComputedRef, type Ref } from 'vue'
import { ApiError, createApi, graphql, raiseUserErrors, type Api, type ResultOf } from './graphql'

export const LoginMutation = graphql(`
  mutation Login($username: String!, $password: String!) {
    login(username: $username, password: $password) {
      token
      expiresAt
      viewer { id username displayName role roleLabel department { code name shortName } }
      errors { code message field }
    }
  }
`)

/** Ends the session on the server too: the token is revoked, not only forgotten here. */
export const LogoutMutation = graphql(`
  mutation Logout {
    logout { ok }
  }
`)

export type Viewer = NonNullable<ResultOf<typeof LoginMutation>['login']['viewer']>

export interface SessionState {
  readonly token: string
  /** ISO date-time at which the server stops accepting the token. */
  readonly expiresAt: string
  readonly viewer: Viewer
  readonly loggedInAt: string
  /** Set when the server refused the token before its expiry (revoked, logged out elsewhere). */
  readonly refusedAt?: string
}

export interface Session {
  readonly state: Ref<SessionState | null>
  /** True once the token expired or the server refused it: sync waits for a new login. */
  readonly expired: ComputedRef<boolean>
  /** The API with this session's token. */
  readonly api: Api
  login(username: string, password: string): Promise<SessionState>
  /** Forget the token (local data is the app's to wipe, after its warning). */
  forget(): void
  /** Ask the server to revoke the token (when online with one); a failure is not an error:
   * offline, or the token already expired, forgetting it is all that is left to do. */
  revoke(): Promise<void>
  /** ``revoke``, then ``forget``. */
  logout(): Promise<void>
  /** The server said the token is no longer good. */
  refused(): void
  /** The current token, or null when there is none or it expired. */
  token(): string | null
}

function isSessionState(value: unknown): value is SessionState {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    typeof v.token === 'string' &&
    typeof v.expiresAt === 'string' &&
    typeof v.viewer === 'object' &&
    v.viewer !== null &&
    typeof (v.viewer as Record<string, unknown>).username === 'string'
  )
}

export function createSession(options: { storageKey: string; now?: () => number }): Session {
  const now = options.now ?? Date.now
  const clock = ref(now())
  // The expiry shows without a reload: the clock ticks once a minute.
  setInterval(() => (clock.value = now()), 60_000)

  const state = ref<SessionState | null>(read())
  const expired = computed(() => {
    const current = state.value
    if (!current) return false
    return current.refusedAt !== undefined || Date.parse(current.expiresAt) <= clock.value
  })

  function read(): SessionState | null {
    try {
      const raw = localStorage.getItem(options.storageKey)
      const parsed: unknown = raw ? JSON.parse(raw) : null
      return isSessionState(parsed) ? parsed : null
    } catch {
      return null
    }
  }

  function write(next: SessionState | null): void {
    state.value = next
    clock.value = now()
    if (next) localStorage.setItem(options.storageKey, JSON.stringify(next))
    else localStorage.removeItem(options.storageKey)
  }

  // Another tab logged in or out: follow it.
  window.addEventListener('storage', (event) => {
    if (event.key === options.storageKey) state.value = read()
  })

  function token(): string | null {
    return state.value && !expired.value ? state.value.token : null
  }

  function refused(): void {
    if (state.value && state.value.refusedAt === undefined) {
      write({ ...state.value, refusedAt: new Date(now()).toISOString() })
    }
  }

  const api = createApi({ token, onUnauthenticated: refused })
  const loginApi = createApi({ token: () => null })

  async function login(username: string, password: string): Promise<SessionState> {
    const data = await loginApi.mutation(LoginMutation, { username: username.trim(), password })
    raiseUserErrors(data.login.errors)
    const { token: issued, expiresAt, viewer } = data.login
    if (!issued || !expiresAt || !viewer) {
      throw new ApiError('server', '登录未返回令牌, 请重试')
    }
    const next: SessionState = {
      token: issued,
      expiresAt,
      viewer,
      loggedInAt: new Date(now()).toISOString(),
    }
    write(next)
    return next
  }

  async function revoke(): Promise<void> {
    if (!navigator.onLine || !token()) return
    try {
      await api.mutation(LogoutMutation, {})
    } catch {
      // offline after all, or the token expired: nothing more to do on the server
    }
  }

  async function logout(): Promise<void> {
    await revoke()
    write(null)
  }

  return { state, expired, api, login, forget: () => write(null), revoke, logout, refused, token }
}
