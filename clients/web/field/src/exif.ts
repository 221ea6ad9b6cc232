// EXIF kept across the downscale: the camera's APP1 segment is copied into the new JPEG with
// its orientation set to 1 (the pixels are drawn upright); a photo without EXIF gets a small
// one with the capture time and the device's position. Little-endian TIFF, as cameras write.

const SOI = 0xffd8
const APP1 = 0xffe1

/** The APP1 "Exif" segment of a JPEG (marker included), or null. */
export function exifSegment(jpeg: Uint8Array): Uint8Array | null {
  const view = new DataView(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength)
  if (jpeg.length < 4 || view.getUint16(0) !== SOI) return null
  let at = 2
  while (at + 4 <= jpeg.length) {
    const marker = view.getUint16(at)
    if ((marker & 0xff00) !== 0xff00 || marker === 0xffda) return null
    const length = view.getUint16(at + 2)
    if (marker === APP1 && String.fromCharCode(...jpeg.subarray(at + 4, at + 8)) === 'Exif') {
      return jpeg.slice(at, at + 2 + length)
    }
    at += 2 + length
  }
  return null
}

/** Sets the orientation tag of IFD0 to 1 in an APP1 segment (in place). */
export function uprightOrientation(segment: Uint8Array): Uint8Array {
  const tiff = 10 // marker (2), length (2), "Exif\0\0" (6)
  const view = new DataView(segment.buffer, segment.byteOffset, segment.byteLength)
  if (segment.length < tiff + 8) return segment
  const little = view.getUint16(tiff) === 0x4949
  const ifd = tiff + view.getUint32(tiff + 4, little)
  if (ifd + 2 > segment.length) return segment
  const count = view.getUint16(ifd, little)
  for (let i = 0; i < count; i += 1) {
    const entry = ifd + 2 + i * 12
    if (entry + 12 > segment.length) break
    if (view.getUint16(entry, little) === 0x0112) view.setUint16(entry + 8, 1, little)
  }
  return segment
}

/** ``jpeg`` with ``segment`` right after its start marker (any APP1 Exif it had is dropped). */
export function withExif(jpeg: Uint8Array, segment: Uint8Array): Uint8Array {
  const own = exifSegment(jpeg)
  let body = jpeg.subarray(2)
  if (own) {
    const index = indexOf(jpeg, own)
    body = new Uint8Array([...jpeg.subarray(2, index), ...jpeg.subarray(index + own.length)])
  }
  const out = new Uint8Array(2 + segment.length + body.length)
  out.set([0xff, 0xd8], 0)
  out.set(segment, 2)
  out.set(body, 2 + segment.length)
  return out
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i <= haystack.length - needle.length; i += 1) {
    for (let j = 0; j < needle.length; j += 1) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}

interface Entry {
  tag: number
  type: 1 | 2 | 3 | 4 | 5 // BYTE, ASCII, SHORT, LONG, RATIONAL
  values: number[] | string
}

function rationals(value: number): number[] {
  const abs = Math.abs(value)
  const degrees = Math.floor(abs)
  const minutes = Math.floor((abs - degrees) * 60)
  const seconds = Math.round(((abs - degrees) * 60 - minutes) * 60 * 10000)
  return [degrees, 1, minutes, 1, seconds, 10000]
}

/** "2026:03:02 09:15:00" in Beijing time, as EXIF writes local time. */
function exifTime(date: Date): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).formatToParts(date)
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '00'
  return `${get('year')}:${get('month')}:${get('day')} ${get('hour').replace('24', '00')}:${get('minute')}:${get('second')}`
}

/** A minimal APP1 segment: orientation 1, DateTimeOriginal (+08:00) and, when known, GPS. */
export function buildExif(takenAt: Date, position: { latitude: number; longitude: number } | null): Uint8Array {
  const ifd0: Entry[] = [{ tag: 0x0112, type: 3, values: [1] }, { tag: 0x8769, type: 4, values: [0] }]
  if (position) ifd0.push({ tag: 0x8825, type: 4, values: [0] })
  const exif: Entry[] = [
    { tag: 0x9003, type: 2, values: exifTime(takenAt) },
    { tag: 0x9011, type: 2, values: '+08:00' },
  ]
  const gps: Entry[] = position
    ? [
        { tag: 0x0000, type: 1, values: [2, 3, 0, 0] },
        { tag: 0x0001, type: 2, values: position.latitude >= 0 ? 'N' : 'S' },
        { tag: 0x0002, type: 5, values: rationals(position.latitude) },
        { tag: 0x0003, type: 2, values: position.longitude >= 0 ? 'E' : 'W' },
        { tag: 0x0004, type: 5, values: rationals(position.longitude) },
      ]
    : []
  const size = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8 } as const
  const dataSize = (e: Entry) => (typeof e.values === 'string' ? e.values.length + 1 : e.values.length * size[e.type])
  const ifdSize = (entries: Entry[]) => 2 + entries.length * 12 + 4 + entries.reduce((n, e) => n + (dataSize(e) > 4 ? dataSize(e) : 0), 0)
  const ifd0At = 8
  const exifAt = ifd0At + ifdSize(ifd0)
  const gpsAt = exifAt + ifdSize(exif)
  ifd0[1]!.values = [exifAt]
  if (position) ifd0[2]!.values = [gpsAt]
  const total = gpsAt + (position ? ifdSize(gps) : 0)
  const tiff = new Uint8Array(total)
  const view = new DataView(tiff.buffer)
  tiff.set([0x49, 0x49, 0x2a, 0x00], 0)
  view.setUint32(4, ifd0At, true)
  const writeIfd = (at: number, entries: Entry[]) => {
    view.setUint16(at, entries.length, true)
    let extra = at + 2 + entries.length * 12 + 4
    entries.forEach((e, i) => {
      const entry = at + 2 + i * 12
      const count = typeof e.values === 'string' ? e.values.length + 1 : e.type === 5 ? e.values.length / 2 : e.values.length
      view.setUint16(entry, e.tag, true)
      view.setUint16(entry + 2, e.type, true)
      view.setUint32(entry + 4, count, true)
      const bytes = dataSize(e)
      const target = bytes > 4 ? extra : entry + 8
      if (bytes > 4) {
        view.setUint32(entry + 8, extra, true)
        extra += bytes
      }
      if (typeof e.values === 'string') {
        for (let k = 0; k < e.values.length; k += 1) tiff[target + k] = e.values.charCodeAt(k)
      } else {
        e.values.forEach((v, k) => {
          if (e.type === 1) tiff[target + k] = v
          else if (e.type === 3) view.setUint16(target + k * 2, v, true)
          else view.setUint32(target + k * 4, v, true)
        })
      }
    })
    view.setUint32(at + 2 + entries.length * 12, 0, true)
  }
  writeIfd(ifd0At, ifd0)
  writeIfd(exifAt, exif)
  if (position) writeIfd(gpsAt, gps)
  const segment = new Uint8Array(4 + 6 + total)
  const sv = new DataView(segment.buffer)
  sv.setUint16(0, APP1)
  sv.setUint16(2, 2 + 6 + total)
  segment.set([0x45, 0x78, 0x69, 0x66, 0, 0], 4)
  segment.set(tiff, 10)
  return segment
}
