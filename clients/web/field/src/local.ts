// What the field app keeps on the tablet, per user (one IndexedDB database each, so a second
// person on the same tablet never opens the first one's work): the log of pending and refused
// edits, the photo outbox, cached lists. The documents themselves are in y-indexeddb databases
// named after the user and the document (see docName).
import Dexie, { type Table } from 'dexie'
import type { Intent } from './sync/intents'

export type IntentState = 'pending' | 'refused'

export interface IntentRow {
  id?: number
  readonly doc: string
  readonly intent: Intent
  state: IntentState
  /** The Yjs update this intent made in the current replica (made again after a reset). */
  update: Uint8Array | null
  readonly at: string
  code?: string
  reason?: string
}

export type PhotoState = 'pending' | 'uploading' | 'done' | 'refused'

export interface PhotoRow {
  /** The SHA-256 of the stored (downscaled) bytes: the photo's id in the document. */
  readonly id: string
  readonly doc: string
  readonly inspectionId: string
  readonly department: string
  readonly check: string
  readonly blob: Blob
  readonly fileName: string
  readonly takenAt: string
  readonly latitude: number | null
  readonly longitude: number | null
  readonly accuracy: number | null
  state: PhotoState
  progress: number
  reason?: string
}

export interface ListRow {
  readonly key: string
  readonly value: unknown
  readonly at: string
}

export interface MetaRow {
  readonly key: string
  readonly value: unknown
}

export class LocalDb extends Dexie {
  intents!: Table<IntentRow, number>
  photos!: Table<PhotoRow, string>
  lists!: Table<ListRow, string>
  meta!: Table<MetaRow, string>

  constructor(name: string) {
    super(name)
    this.version(1).stores({
      intents: '++id, doc, state',
      photos: 'id, doc, state',
      lists: 'key',
      meta: 'key',
    })
  }
}

const PREFIX = 'onewindow-field'

export function dbName(username: string): string {
  return `${PREFIX}:${username}`
}

/** The y-indexeddb database of one document of one user. */
export function docName(username: string, doc: string): string {
  return `${PREFIX}:${username}:${doc}`
}

/** Every IndexedDB database of this app for ``username`` (for logout). */
export async function databasesOf(username: string): Promise<string[]> {
  const all = await indexedDB.databases()
  return all
    .map((d) => d.name ?? '')
    .filter((name) => name === dbName(username) || name.startsWith(`${dbName(username)}:`))
}

export async function wipe(username: string): Promise<void> {
  for (const name of await databasesOf(username)) {
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.deleteDatabase(name)
      request.onsuccess = () => resolve()
      request.onerror = () => reject(request.error)
      request.onblocked = () => resolve()
    })
  }
}
