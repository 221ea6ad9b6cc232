// The field app's one session and, for the person logged in, their workspace on this tablet:
// the local database, the open documents (replicas) and the cached lists.
import { syncUrl } from '@shared/endpoints'
import { FIELD_SESSION_KEY } from '@shared/keys'
import { createSession } from '@shared/session'
import { IndexeddbPersistence } from 'y-indexeddb'
import { computed, reactive, shallowRef, type ShallowRef } from 'vue'
import { failureText } from './format'
import { LocalDb, dbName, docName, wipe } from './local'
import { Replica } from './sync/replica'

export const session = createSession({ storageKey: FIELD_SESSION_KEY })
export const api = session.api

export const viewer = computed(() => session.state.value?.viewer ?? null)

/** Online as the browser sees it, kept current by its events. */
export const network = reactive({ online: navigator.onLine })
window.addEventListener('online', () => (network.online = true))
window.addEventListener('offline', () => (network.online = false))

export interface Workspace {
  readonly username: string
  readonly db: LocalDb
  readonly replicas: Map<string, Replica>
}

let current: Workspace | null = null

/** The workspace of the person logged in (their own IndexedDB database). */
export function workspace(): Workspace {
  const username = session.state.value?.viewer.username
  if (!username) throw new Error('no session: log in first')
  if (current?.username !== username) {
    current = { username, db: new LocalDb(dbName(username)), replicas: new Map() }
  }
  return current
}

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name)
    request.onsuccess = () => resolve()
    request.onerror = () => reject(request.error)
    request.onblocked = () => resolve()
  })
}

/** The replica of ``doc`` (``inspection/12``), opened from IndexedDB and syncing when online. */
export async function replica(doc: string): Promise<Replica> {
  const space = workspace()
  const known = space.replicas.get(doc)
  if (known) return known
  const stored = docName(space.username, doc)
  const opened = new Replica({
    name: doc,
    db: space.db,
    endpoint: () => {
      const token = session.token()
      return token ? { url: syncUrl(location, doc), token } : null
    },
    openSocket: (url, protocols) => new WebSocket(url, protocols),
    persist: (ydoc) => new IndexeddbPersistence(stored, ydoc),
    drop: () => deleteDatabase(stored),
    online: () => navigator.onLine,
    events: window,
    onUnauthenticated: () => session.refused(),
  })
  space.replicas.set(doc, opened)
  await opened.open()
  opened.connect()
  return opened
}

/** Every replica opened so far (the sync indicator sums them). */
export const openReplicas = shallowRef<Replica[]>([])
export async function track(doc: string): Promise<Replica> {
  const opened = await replica(doc)
  if (!openReplicas.value.includes(opened)) openReplicas.value = [...openReplicas.value, opened]
  return opened
}

/** Connects every open replica again (after a new login). */
export function reconnectAll(): void {
  for (const opened of openReplicas.value) opened.connect()
}

export async function closeWorkspace(): Promise<void> {
  if (!current) return
  for (const opened of current.replicas.values()) await opened.close()
  current.db.close()
  current = null
  openReplicas.value = []
}

/** Logs out: stops syncing, deletes everything this person kept on the tablet. */
export async function logout(): Promise<void> {
  const username = session.state.value?.viewer.username
  await session.revoke() // the server revokes the token
  await closeWorkspace()
  if (username) await wipe(username)
  session.forget()
}

export interface Cached<T> {
  readonly data: ShallowRef<T | null>
  readonly at: ShallowRef<string | null>
  readonly loading: ShallowRef<boolean>
  readonly error: ShallowRef<string | null>
  refresh(): Promise<void>
}

/** A list kept on the tablet: shown from IndexedDB at once, refreshed from the server when
 * online (and kept again). */
export function cached<T>(key: string, fetch: () => Promise<T>): Cached<T> {
  const data = shallowRef<T | null>(null)
  const at = shallowRef<string | null>(null)
  const loading = shallowRef(false)
  const error = shallowRef<string | null>(null)
  const db = workspace().db
  const loaded = db.lists.get(key).then((row) => {
    if (row && data.value === null) {
      data.value = row.value as T
      at.value = row.at
    }
  })

  async function refresh(): Promise<void> {
    await loaded
    if (!navigator.onLine) {
      error.value = data.value === null ? '离线: 本机还没有此列表, 请联网后刷新' : null
      return
    }
    loading.value = true
    try {
      const value = await fetch()
      const when = new Date().toISOString()
      data.value = value
      at.value = when
      error.value = null
      await db.lists.put({ key, value: JSON.parse(JSON.stringify(value)) as unknown, at: when })
    } catch (failure) {
      error.value = failureText(failure, '离线: 显示本机保存的列表')
    } finally {
      loading.value = false
    }
  }

  return { data, at, loading, error, refresh }
}
