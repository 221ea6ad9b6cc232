// One field document on this tablet: its Yjs replica (kept in IndexedDB by y-indexeddb), the
// log of the person's pending edits (intents), and the connection to /sync/{doc} with the
// OneWindow acknowledgements (sync/protocol.py).
//
// The contract with the server: every update message of a connection is numbered from 1;
// "ack up to N" commits every one up to N not refused; an error names a refused number (and
// every later update depending on it is refused too, with the same reason); "held" names an
// update whose dependencies the server lacks, answered with a sync step 2 against the
// server's state vector. After a refusal, once every number is answered, the replica is
// dropped: a fresh Y.Doc (new client id) takes the server's state and the edits still pending
// (not refused) are applied again and sent. Refused edits stay listed with their reason.
import { reactive, shallowRef } from 'vue'
import * as Y from 'yjs'
import type { IntentRow, LocalDb } from '../local'
import { applyIntent, validate, type Intent } from './intents'
import * as wire from './wire'

export interface SocketLike {
  binaryType: string
  readonly readyState: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  onopen: ((event: Event) => void) | null
  onmessage: ((event: MessageEvent) => void) | null
  onclose: ((event: CloseEvent) => void) | null
  onerror: ((event: Event) => void) | null
}

export interface Persistence {
  readonly whenSynced: Promise<unknown>
  destroy(): Promise<unknown>
}

export interface ReplicaOptions {
  readonly name: string
  readonly db: LocalDb
  /** The websocket URL and the bearer token, or null while there is no valid session. */
  readonly endpoint: () => { url: string; token: string } | null
  readonly openSocket: (url: string, protocols: string[]) => SocketLike
  /** Keeps the replica (y-indexeddb); ``drop`` deletes what it kept. */
  readonly persist: (doc: Y.Doc) => Persistence
  readonly drop: () => Promise<void>
  readonly online: () => boolean
  /** Where "online" and "offline" are heard (the window). */
  readonly events: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>
  readonly onUnauthenticated: () => void
  readonly now?: () => Date
  readonly random?: () => number
}

export const SUBPROTOCOL = 'onewindow.v1'
const LOCAL = Symbol('local edit')
const REMOTE = Symbol('server')
const OPEN = 1

export class Replica {
  readonly name: string
  doc: Y.Doc
  /** Moves on every change of the document (local, remote, or a reset). */
  readonly version = shallowRef(0)
  readonly state = reactive({
    connected: false,
    synced: false,
    pending: 0,
    refused: [] as IntentRow[],
    lastSyncAt: null as string | null,
    error: null as string | null,
    resets: 0,
    /** Writes to the tablet's storage still under way: a page closed now could lose them (the
     * browser aborts the IndexedDB writes of a page that goes away). */
    saving: 0,
  })

  private readonly options: ReplicaOptions
  private persistence: Persistence | null = null
  private rows: IntentRow[] = []
  private ws: SocketLike | null = null
  private counter = 0
  private numbered = new Map<number, number[]>()
  private serverVector: Uint8Array | null = null
  private mustReset = false
  private awaitingState = false
  private inbox: Promise<void> = Promise.resolve()
  private writes: Promise<unknown> = Promise.resolve()
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private closed = false
  private readonly onOnline = () => this.connect()
  private readonly onOffline = () => this.ws?.close(1000, 'offline')

  constructor(options: ReplicaOptions) {
    this.options = options
    this.name = options.name
    this.doc = this.freshDoc()
  }

  private now(): Date {
    return (this.options.now ?? (() => new Date()))()
  }

  private freshDoc(): Y.Doc {
    const doc = new Y.Doc()
    doc.on('update', () => (this.version.value += 1))
    return doc
  }

  /** Loads the replica and the pending edits from IndexedDB (works offline). */
  async open(): Promise<void> {
    this.persistence = this.options.persist(this.doc)
    await this.persistence.whenSynced
    const meta = await this.options.db.meta.get(`lastSync:${this.name}`)
    this.state.lastSyncAt = (meta?.value as string | undefined) ?? null
    this.rows = await this.options.db.intents.where('doc').equals(this.name).sortBy('id')
    // An edit whose update did not reach the replica before the page went away is applied
    // again; the others are already in it (applying an update twice changes nothing).
    this.doc.transact(() => {
      for (const row of this.rows) {
        if (row.state !== 'pending') continue
        if (row.update) Y.applyUpdate(this.doc, row.update, LOCAL)
      }
    }, LOCAL)
    for (const row of this.rows) {
      if (row.state === 'pending' && !row.update) this.applyRow(row)
    }
    this.counts()
    this.options.events.addEventListener('online', this.onOnline)
    this.options.events.addEventListener('offline', this.onOffline)
  }

  /** Stops syncing (the replica and the log stay in IndexedDB). */
  async close(): Promise<void> {
    this.closed = true
    this.options.events.removeEventListener('online', this.onOnline)
    this.options.events.removeEventListener('offline', this.onOffline)
    if (this.timer) clearTimeout(this.timer)
    this.ws?.close(1000, 'closed')
    this.ws = null
    await this.writes
    await this.persistence?.destroy()
    this.doc.destroy()
  }

  /** Resolves once every write to IndexedDB so far is done. */
  flush(): Promise<unknown> {
    return this.writes
  }

  private write(job: () => Promise<unknown>): void {
    this.state.saving += 1
    this.writes = this.writes
      .then(job)
      .catch((error: unknown) => {
        this.state.error = `本机存储写入失败: ${String(error)}`
      })
      .finally(() => (this.state.saving -= 1))
  }

  private counts(): void {
    this.state.pending = this.rows.filter((row) => row.state === 'pending').length
    this.state.refused = this.rows.filter((row) => row.state === 'refused')
  }

  /** Applies ``row``'s intent to the replica and keeps the update it made. */
  private applyRow(row: IntentRow): boolean {
    const made: Uint8Array[] = []
    const keep = (update: Uint8Array, origin: unknown) => {
      if (origin === LOCAL) made.push(update)
    }
    this.doc.on('update', keep)
    try {
      this.doc.transact(() => applyIntent(this.doc, row.intent), LOCAL)
    } catch (error) {
      row.state = 'refused'
      row.code = 'LAYOUT'
      row.reason = error instanceof Error ? error.message : String(error)
      return false
    } finally {
      this.doc.off('update', keep)
    }
    row.update = made.length ? Y.mergeUpdates(made) : null
    return true
  }

  /** Records an edit: refused at once (IntentProblem) when the layout would refuse it,
   * otherwise applied to the replica, kept in the log and sent when connected. */
  record(intent: Intent): void {
    validate(intent)
    const row: IntentRow = { doc: this.name, intent, state: 'pending', update: null, at: this.now().toISOString() }
    if (!this.awaitingState) {
      const made: Uint8Array[] = []
      const keep = (update: Uint8Array, origin: unknown) => {
        if (origin === LOCAL) made.push(update)
      }
      this.doc.on('update', keep)
      try {
        this.doc.transact(() => applyIntent(this.doc, intent), LOCAL)
      } finally {
        this.doc.off('update', keep)
      }
      row.update = made.length ? Y.mergeUpdates(made) : null
    }
    this.rows.push(row)
    this.counts()
    this.write(async () => {
      row.id = await this.options.db.intents.add({ ...row })
      if (row.update && !this.awaitingState) this.sendNumbered([row.id], wire.syncUpdate(row.update))
    })
  }

  /** Forgets a refused edit the person has read (it stays in exports until then). */
  dismiss(row: IntentRow): void {
    this.rows = this.rows.filter((r) => r !== row)
    this.counts()
    if (row.id !== undefined) {
      const id = row.id
      this.write(() => this.options.db.intents.delete(id))
    }
  }

  /** Every pending and refused edit of this document (for the export). */
  log(): readonly IntentRow[] {
    return this.rows
  }

  // --- the connection ------------------------------------------------------------------

  connect(): void {
    if (this.closed || this.ws || !this.options.online()) return
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = null
    }
    const endpoint = this.options.endpoint()
    if (!endpoint) return
    const ws = this.options.openSocket(endpoint.url, [SUBPROTOCOL, `onewindow.bearer.${endpoint.token}`])
    ws.binaryType = 'arraybuffer'
    this.ws = ws
    ws.onopen = () => {
      this.inbox = this.inbox.then(() => this.opened(ws))
    }
    ws.onmessage = (event) => {
      const data = new Uint8Array(event.data as ArrayBuffer)
      this.inbox = this.inbox.then(() => this.received(ws, data))
    }
    ws.onclose = (event) => {
      this.inbox = this.inbox.then(() => this.lost(ws, event.code, event.reason))
    }
    ws.onerror = () => undefined
  }

  private async opened(ws: SocketLike): Promise<void> {
    if (ws !== this.ws) return
    this.attempt = 0
    this.state.connected = true
    this.state.error = null
    this.counter = 0
    this.numbered.clear()
    if (this.mustReset) {
      await this.reset(ws)
      return
    }
    ws.send(wire.syncStep1(Y.encodeStateVector(this.doc)))
    await this.writes
    for (const row of this.rows) {
      if (row.state === 'pending' && row.update && row.id !== undefined) {
        this.sendNumbered([row.id], wire.syncUpdate(row.update))
      }
    }
  }

  private sendNumbered(ids: number[], frame: Uint8Array): void {
    const ws = this.ws
    if (!ws || ws.readyState !== OPEN || !this.state.connected || this.awaitingState) return
    this.counter += 1
    this.numbered.set(this.counter, ids)
    ws.send(frame)
  }

  private async received(ws: SocketLike, data: Uint8Array): Promise<void> {
    if (ws !== this.ws) return
    let message: wire.ServerMessage
    try {
      message = wire.decode(data)
    } catch (error) {
      this.state.error = `服务器消息无法解读: ${String(error)}`
      return
    }
    switch (message.type) {
      case 'step1':
        this.serverVector = message.stateVector
        this.sendNumbered([], wire.syncStep2(Y.encodeStateAsUpdate(this.doc, message.stateVector)))
        break
      case 'step2':
      case 'update':
        Y.applyUpdate(this.doc, message.update, REMOTE)
        if (message.type === 'step2') {
          this.state.synced = true
          if (this.awaitingState) this.reapply()
        }
        break
      case 'ack':
        this.settle([message.number])
        break
      case 'ackUpTo':
        this.settle([...this.numbered.keys()].filter((n) => n <= message.number))
        break
      case 'held':
        if (this.serverVector) {
          this.sendNumbered([], wire.syncStep2(Y.encodeStateAsUpdate(this.doc, this.serverVector)))
        }
        break
      case 'error':
        this.refuse(message.number, message.code, message.reason)
        break
      case 'denied':
        this.state.error = `服务器拒绝: ${message.reason}`
        break
      default:
        break
    }
    this.settledAll()
    if (this.mustReset && this.numbered.size === 0) await this.reset(ws)
  }

  private settle(numbers: number[]): void {
    const ids = new Set<number>()
    for (const number of numbers) {
      for (const id of this.numbered.get(number) ?? []) ids.add(id)
      this.numbered.delete(number)
    }
    if (ids.size === 0) return
    this.rows = this.rows.filter((row) => row.id === undefined || !ids.has(row.id) || row.state !== 'pending')
    this.counts()
    this.write(() => this.options.db.intents.bulkDelete([...ids]))
  }

  private settledAll(): void {
    if (!this.state.synced || this.mustReset || this.awaitingState || this.numbered.size > 0) return
    if (this.state.pending > 0) return
    const at = this.now().toISOString()
    this.state.lastSyncAt = at
    this.write(() => this.options.db.meta.put({ key: `lastSync:${this.name}`, value: at }))
  }

  private refuse(number: number, code: string, reason: string): void {
    if (number === 0) {
      this.state.error = `${reason} (${code})`
      return
    }
    const ids = new Set(this.numbered.get(number) ?? [])
    this.numbered.delete(number)
    this.mustReset = true
    for (const row of this.rows) {
      if (row.id !== undefined && ids.has(row.id)) {
        row.state = 'refused'
        row.code = code
        row.reason = reason
        const id = row.id
        this.write(() => this.options.db.intents.update(id, { state: 'refused', code, reason }))
      }
    }
    this.counts()
  }

  /** Drops the replica and asks the server for its whole state (see reapply). */
  private async reset(ws: SocketLike): Promise<void> {
    this.mustReset = false
    this.awaitingState = true
    this.state.synced = false
    this.state.resets += 1
    await this.writes
    await this.persistence?.destroy()
    await this.options.drop()
    this.doc.destroy()
    this.doc = this.freshDoc()
    this.version.value += 1
    this.persistence = this.options.persist(this.doc)
    await this.persistence.whenSynced
    if (ws === this.ws && ws.readyState === OPEN) ws.send(wire.syncStep1(Y.encodeStateVector(this.doc)))
  }

  /** The server's state is in: apply the pending edits again and send them. */
  private reapply(): void {
    this.awaitingState = false
    for (const row of this.rows) {
      if (row.state !== 'pending') continue
      if (!this.applyRow(row)) {
        const { id, code, reason } = row
        if (id !== undefined) this.write(() => this.options.db.intents.update(id, { state: 'refused', code, reason }))
        continue
      }
      const { update } = row
      // Writes run in order: the row's own add (record) is done when this one runs.
      this.write(async () => {
        if (row.id === undefined) return
        await this.options.db.intents.update(row.id, { update })
        if (update) this.sendNumbered([row.id], wire.syncUpdate(update))
      })
    }
    this.counts()
  }

  private async lost(ws: SocketLike, code: number, reason: string): Promise<void> {
    if (ws !== this.ws) return
    this.ws = null
    this.state.connected = false
    this.state.synced = false
    this.numbered.clear()
    if (this.awaitingState) {
      // the server's state did not come: start again from the reset on the next connection
      this.awaitingState = false
      this.mustReset = true
    }
    if (this.closed) return
    if (code === 4401) {
      this.state.error = '登录已失效, 请重新登录后同步 (本机记录都保留)'
      this.options.onUnauthenticated()
      return
    }
    if (code === 4403 || code === 4404) this.state.error = reason || '无权同步此文档'
    if (!this.options.online()) return
    const random = this.options.random ?? Math.random
    const delay = code === 4403 || code === 4404 ? 60_000 : random() * Math.min(60_000, 1000 * 2 ** this.attempt)
    this.attempt += 1
    this.timer = setTimeout(() => {
      this.timer = null
      this.connect()
    }, delay)
  }
}
