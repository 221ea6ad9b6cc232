// Photos taken on the tablet: downscaled on the device (long edge 2000 px, JPEG quality 0.8)
// keeping their EXIF capture time and GPS, kept in IndexedDB (the photo outbox) until the
// ticket flow (shared/upload.ts) has delivered them once, whatever reloads happen between.
import { ApiError } from '@shared/graphql'
import { sha256Hex, uploadFile } from '@shared/upload'
import { reactive, ref, shallowRef } from 'vue'
import { buildExif, exifSegment, uprightOrientation, withExif } from './exif'
import type { PhotoRow } from './local'
import { InspectionPhotosQuery, type PhotoInfo } from './queries'
import { api, session, workspace } from './workspace'

export interface PhotoView {
  readonly id: string
  readonly src: string | null
  readonly label: string
  readonly state: 'local' | 'uploading' | 'ready' | 'remote-pending' | 'refused'
}

export const LONG_EDGE = 2000
export const QUALITY = 0.8
/** Positions less accurate than this (metres) are recorded with a warning. */
export const POOR_ACCURACY_M = 50

export interface Position {
  readonly latitude: number
  readonly longitude: number
  readonly accuracy: number
}

/** The device's latest position while a checklist is open (watched, so that taking a photo
 * never waits for a fix). */
export const lastPosition = shallowRef<Position | null>(null)
let watching: number | null = null

export function watchPosition(): void {
  if (watching !== null || !('geolocation' in navigator)) return
  watching = navigator.geolocation.watchPosition(
    (p) => (lastPosition.value = { latitude: p.coords.latitude, longitude: p.coords.longitude, accuracy: p.coords.accuracy }),
    () => undefined,
    { enableHighAccuracy: true, maximumAge: 30_000 },
  )
}

export function stopWatchingPosition(): void {
  if (watching !== null) navigator.geolocation.clearWatch(watching)
  watching = null
}

/** A JPEG no longer than LONG_EDGE, upright, with the original's EXIF (or a new one). */
export async function downscale(file: Blob, takenAt: Date, where: Position | null): Promise<Blob> {
  const original = new Uint8Array(await file.arrayBuffer())
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' })
  const scale = Math.min(1, LONG_EDGE / Math.max(bitmap.width, bitmap.height))
  const width = Math.max(1, Math.round(bitmap.width * scale))
  const height = Math.max(1, Math.round(bitmap.height * scale))
  const canvas = document.createElement('canvas')
  canvas.width = width
  canvas.height = height
  canvas.getContext('2d')?.drawImage(bitmap, 0, 0, width, height)
  bitmap.close()
  const blob = await new Promise<Blob>((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('照片无法压缩'))), 'image/jpeg', QUALITY),
  )
  const kept = exifSegment(original)
  const segment = kept ? uprightOrientation(kept) : buildExif(takenAt, where)
  return new Blob([withExif(new Uint8Array(await blob.arrayBuffer()), segment) as BlobPart], { type: 'image/jpeg' })
}

/** Reactive state of the outbox: each photo's state and progress, for the screens. */
export const outbox = reactive({
  rows: {} as Record<string, Pick<PhotoRow, 'state' | 'progress' | 'reason' | 'doc'>>,
  urls: {} as Record<string, string>,
  remote: {} as Record<string, PhotoInfo>,
  uploading: false,
  error: null as string | null,
})

export async function loadOutbox(): Promise<void> {
  const rows = await workspace().db.photos.toArray()
  for (const row of rows) {
    outbox.rows[row.id] = { state: row.state === 'uploading' ? 'pending' : row.state, progress: row.progress, reason: row.reason, doc: row.doc }
    if (!outbox.urls[row.id]) outbox.urls[row.id] = URL.createObjectURL(row.blob)
  }
}

interface PhotoInput {
  readonly file: File
  readonly doc: string
  readonly inspectionId: string
  readonly department: string
  readonly check: string
}

const keeping = ref(0)

/** Whether a photo is still being compressed or written to the tablet's storage. */
export function keepingPhotos(): boolean {
  return keeping.value > 0
}

/** Keeps a photo for a check (offline), returns its id (the SHA-256 of the kept bytes). */
export async function takePhoto(input: PhotoInput): Promise<string> {
  if (!input.file.type.startsWith('image/')) throw new Error('只能添加照片 (JPEG、PNG 或 WebP)')
  keeping.value += 1
  try {
    return await keepPhoto(input)
  } finally {
    keeping.value -= 1
  }
}

async function keepPhoto(input: PhotoInput): Promise<string> {
  const takenAt = new Date(input.file.lastModified || Date.now())
  const where = lastPosition.value
  const blob = await downscale(input.file, takenAt, where)
  const id = await sha256Hex(blob)
  const db = workspace().db
  if (!(await db.photos.get(id))) {
    await db.photos.put({
      id, doc: input.doc, inspectionId: input.inspectionId, department: input.department, check: input.check, blob,
      fileName: `${id.slice(0, 12)}.jpg`, takenAt: takenAt.toISOString(), latitude: where?.latitude ?? null,
      longitude: where?.longitude ?? null, accuracy: where?.accuracy ?? null, state: 'pending', progress: 0,
    })
    outbox.rows[id] = { state: 'pending', progress: 0, doc: input.doc }
    outbox.urls[id] = URL.createObjectURL(blob)
  }
  void uploadPending()
  return id
}

/** How each photo of a check shows: the local copy at once, the server's once uploaded. */
export function photoViews(ids: readonly string[]): PhotoView[] {
  return ids.map((id) => {
    const local = outbox.rows[id]
    const remote = outbox.remote[id]
    if (local) {
      const state = local.state === 'done' ? 'ready' : local.state === 'uploading' ? 'uploading' : local.state === 'refused' ? 'refused' : 'local'
      const label =
        state === 'ready' ? '已上传' : state === 'uploading' ? `上传中 ${Math.round(local.progress * 100)}%` : state === 'refused' ? `被拒: ${local.reason ?? ''}` : '待上传'
      return { id, src: outbox.urls[id] ?? null, label, state }
    }
    if (remote?.status === 'READY') return { id, src: remote.thumbnailUrl ?? null, label: '已上传', state: 'ready' }
    return { id, src: null, label: '对方待上传', state: 'remote-pending' }
  })
}

let running: Promise<void> | null = null
let retry: ReturnType<typeof setTimeout> | null = null
let attempt = 0

/** Uploads every pending photo once (one at a time); a failure of the network is tried again
 * with backoff and when the device is online again; a refusal is kept with its reason. */
export function uploadPending(): Promise<void> {
  running ??= drain().finally(() => (running = null))
  return running
}

async function drain(): Promise<void> {
  const db = workspace().db
  for (;;) {
    if (!navigator.onLine || !session.token()) return
    const next = (await db.photos.where('state').anyOf('pending', 'uploading').first()) ?? null
    if (!next) {
      attempt = 0
      outbox.error = null
      return
    }
    outbox.uploading = true
    outbox.rows[next.id] = { state: 'uploading', progress: 0, doc: next.doc }
    await db.photos.update(next.id, { state: 'uploading' })
    try {
      const file = new File([next.blob], next.fileName, { type: 'image/jpeg' })
      await uploadFile(api, file, { kind: 'PHOTO', check: { inspectionId: next.inspectionId, department: next.department, checkCode: next.check } }, (p) => {
        outbox.rows[next.id] = { state: 'uploading', progress: p.fraction, doc: next.doc }
      })
      await db.photos.update(next.id, { state: 'done', progress: 1 })
      outbox.rows[next.id] = { state: 'done', progress: 1, doc: next.doc }
    } catch (error) {
      const refused = error instanceof ApiError && error.kind === 'refused'
      const reason = error instanceof Error ? error.message : String(error)
      await db.photos.update(next.id, { state: refused ? 'refused' : 'pending', reason })
      outbox.rows[next.id] = { state: refused ? 'refused' : 'pending', progress: 0, reason, doc: next.doc }
      if (!refused) {
        outbox.error = reason
        const delay = Math.random() * Math.min(60_000, 2000 * 2 ** attempt)
        attempt += 1
        if (retry) clearTimeout(retry)
        retry = setTimeout(() => void uploadPending(), delay)
        return
      }
    } finally {
      outbox.uploading = false
    }
  }
}

window.addEventListener('online', () => void uploadPending())

let lastAsked = 0

/** What the server knows of the photos of an inspection (other tablets' photos are shown from
 * here); asked at most every 2 s, only online. */
export async function refreshRemotePhotos(inspectionId: string, ids: readonly string[]): Promise<void> {
  const unknown = ids.filter((id) => !outbox.rows[id] && outbox.remote[id]?.status !== 'READY')
  if (!unknown.length || !navigator.onLine || !session.token() || Date.now() - lastAsked < 2000) return
  lastAsked = Date.now()
  try {
    const data = await api.query(InspectionPhotosQuery, { id: inspectionId })
    for (const section of data.inspection?.departments ?? []) {
      for (const check of section.checks) for (const photo of check.photos) outbox.remote[photo.id] = photo
    }
  } catch {
    // offline or refused: the photos show as waiting until the next try
  }
}
