// The y-websocket frames the field app speaks, with the OneWindow extension (message type 100,
// sync/protocol.py): "ack up to N", per-update ack, errors (a refused update's number, code and
// reason) and "held" (an update whose dependencies the server lacks). One frame, one message.
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export const SYNC = 0
export const AWARENESS = 1
export const AUTH = 2
export const ONEWINDOW = 100

export const STEP1 = 0
export const STEP2 = 1
export const UPDATE = 2

export const ACK = 0
export const ERROR = 1
export const ACK_UPTO = 2
export const HELD = 3

export type ServerMessage =
  | { readonly type: 'step1'; readonly stateVector: Uint8Array }
  | { readonly type: 'step2' | 'update'; readonly update: Uint8Array }
  | { readonly type: 'ack' | 'ackUpTo' | 'held'; readonly number: number }
  | { readonly type: 'error'; readonly number: number; readonly code: string; readonly reason: string }
  | { readonly type: 'denied'; readonly reason: string }
  | { readonly type: 'other' }

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder()
  write(encoder)
  return encoding.toUint8Array(encoder)
}

function syncMessage(kind: number, payload: Uint8Array): Uint8Array {
  return frame((e) => {
    encoding.writeVarUint(e, SYNC)
    encoding.writeVarUint(e, kind)
    encoding.writeVarUint8Array(e, payload)
  })
}

export const syncStep1 = (stateVector: Uint8Array): Uint8Array => syncMessage(STEP1, stateVector)
export const syncStep2 = (update: Uint8Array): Uint8Array => syncMessage(STEP2, update)
export const syncUpdate = (update: Uint8Array): Uint8Array => syncMessage(UPDATE, update)

/** Reads one frame from the server; a broken frame throws with lib0's reason. */
export function decode(data: Uint8Array): ServerMessage {
  const d = decoding.createDecoder(data)
  const type = decoding.readVarUint(d)
  if (type === SYNC) {
    const kind = decoding.readVarUint(d)
    const payload = decoding.readVarUint8Array(d)
    if (kind === STEP1) return { type: 'step1', stateVector: payload }
    return { type: kind === STEP2 ? 'step2' : 'update', update: payload }
  }
  if (type === AUTH) {
    decoding.readVarUint(d)
    return { type: 'denied', reason: decoding.readVarString(d) }
  }
  if (type === ONEWINDOW) {
    const kind = decoding.readVarUint(d)
    const number = decoding.readVarUint(d)
    if (kind === ACK) return { type: 'ack', number }
    if (kind === ACK_UPTO) return { type: 'ackUpTo', number }
    if (kind === HELD) return { type: 'held', number }
    if (kind === ERROR) {
      return { type: 'error', number, code: decoding.readVarString(d), reason: decoding.readVarString(d) }
    }
  }
  return { type: 'other' }
}

/** Server frames, for the unit tests' fake server. */
export const server = {
  ackUpTo: (n: number) => frame((e) => [ONEWINDOW, ACK_UPTO, n].forEach((v) => encoding.writeVarUint(e, v))),
  held: (n: number) => frame((e) => [ONEWINDOW, HELD, n].forEach((v) => encoding.writeVarUint(e, v))),
  error: (n: number, code: string, reason: string) =>
    frame((e) => {
      ;[ONEWINDOW, ERROR, n].forEach((v) => encoding.writeVarUint(e, v))
      encoding.writeVarString(e, code)
      encoding.writeVarString(e, reason)
    }),
}

/** What the client sent, for the unit tests' fake server. */
export function decodeClient(data: Uint8Array): { kind: number; payload: Uint8Array } {
  const d = decoding.createDecoder(data)
  decoding.readVarUint(d)
  const kind = decoding.readVarUint(d)
  return { kind, payload: decoding.readVarUint8Array(d) }
}
