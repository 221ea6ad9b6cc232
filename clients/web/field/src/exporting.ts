// The escape hatch: every edit and photo not yet on the server, as one JSON file (photos as
// base64), so that nothing is lost if the tablet's storage is cleared or a sync never comes.
import { workspace } from './workspace'

function base64(bytes: Uint8Array): string {
  let text = ''
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(text)
}

export async function unsyncedWork(): Promise<Record<string, unknown>> {
  const space = workspace()
  const intents = await space.db.intents.toArray()
  const photos = await space.db.photos.where('state').anyOf('pending', 'uploading', 'refused').toArray()
  return {
    exportedAt: new Date().toISOString(),
    username: space.username,
    edits: intents.map(({ doc, intent, state, at, code, reason }) => ({ doc, intent, state, at, code, reason })),
    photos: await Promise.all(
      photos.map(async (p) => ({
        id: p.id, doc: p.doc, department: p.department, check: p.check, takenAt: p.takenAt, latitude: p.latitude,
        longitude: p.longitude, accuracy: p.accuracy, state: p.state, reason: p.reason,
        jpegBase64: base64(new Uint8Array(await p.blob.arrayBuffer())),
      })),
    ),
  }
}

export async function exportUnsynced(): Promise<void> {
  const work = await unsyncedWork()
  const blob = new Blob([JSON.stringify(work, null, 1)], { type: 'application/json' })
  const link = document.createElement('a')
  link.href = URL.createObjectURL(blob)
  link.download = `未同步记录-${String(work.username)}-${String(work.exportedAt).slice(0, 19).replace(/[:T]/g, '')}.json`
  link.click()
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000)
}
