// The field app's replica against a fake sync server that speaks the OneWindow contract:
// acks up to N, refusals (and every later dependent update refused with the same reason),
// "held", and the recovery (fresh replica from the server's state, pending edits applied again,
// refused ones kept with their reason).
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { LocalDb } from '../src/local'
import type { Intent } from '../src/sync/intents'
import { Replica, type SocketLike } from '../src/sync/replica'
import * as wire from '../src/sync/wire'

/** The server's document: one department ``zjj`` with checks a, b (layout client id 1). */
function layout(): Y.Doc {
  const doc = new Y.Doc()
  doc.clientID = 1
  const root = doc.getMap('departments')
  doc.transact(() => {
    const checks = new Y.Map<unknown>()
    for (const code of ['a', 'b']) {
      const check = new Y.Map<unknown>()
      check.set('measured', new Y.Map())
      check.set('photos', new Y.Array())
      checks.set(code, check)
    }
    const section = new Y.Map<unknown>()
    section.set('checks', checks)
    section.set('rectifications', new Y.Map())
    section.set('conclusion', new Y.Map())
    root.set('zjj', section)
  })
  return doc
}

type Verdict = { refuse: string } | { hold: true } | 'ack'

class FakeServer {
  readonly doc = layout()
  sockets: FakeSocket[] = []
  /** Decides each update message (after the first sync). */
  judge: (update: Uint8Array) => Verdict = () => 'ack'
  autoAck = true

  open(): FakeSocket {
    const socket = new FakeSocket(this)
    this.sockets.push(socket)
    queueMicrotask(() => socket.onopen?.(new Event('open')))
    return socket
  }

  result(code: string): unknown {
    const check = ((this.doc.getMap('departments').get('zjj') as Y.Map<unknown>).get('checks') as Y.Map<unknown>).get(code) as Y.Map<unknown>
    return check.toJSON()
  }
}

class FakeSocket implements SocketLike {
  binaryType = 'arraybuffer'
  readyState = 1
  onopen: ((event: Event) => void) | null = null
  onmessage: ((event: MessageEvent) => void) | null = null
  onclose: ((event: CloseEvent) => void) | null = null
  onerror: ((event: Event) => void) | null = null
  number = 0
  /** Clients whose updates were refused: their later updates depend on the refused one. */
  refused = new Map<number, string>()
  readonly server: FakeServer

  constructor(server: FakeServer) {
    this.server = server
  }

  push(frame: Uint8Array): void {
    const data = frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength)
    queueMicrotask(() => this.onmessage?.({ data } as MessageEvent))
  }

  send(data: Uint8Array): void {
    const { kind, payload } = wire.decodeClient(data)
    if (kind === wire.STEP1) {
      this.push(wire.syncStep2(Y.encodeStateAsUpdate(this.server.doc, payload)))
      this.push(wire.syncStep1(Y.encodeStateVector(this.server.doc)))
      return
    }
    this.number += 1
    // the contract: once one update is refused, later ones of this connection are refused too
    const clients = new Set(Y.decodeUpdate(payload).structs.map((struct) => struct.id.client))
    const dependsOn = [...clients].map((client) => this.refused.get(client)).find((reason) => reason !== undefined)
    const verdict: Verdict = dependsOn ? { refuse: dependsOn } : this.server.judge(payload)
    if (verdict === 'ack') {
      Y.applyUpdate(this.server.doc, payload)
      this.push(wire.server.ackUpTo(this.number))
    } else if ('hold' in verdict) {
      this.push(wire.server.held(this.number))
    } else {
      for (const client of clients) this.refused.set(client, verdict.refuse)
      this.push(wire.server.error(this.number, 'LAYOUT', verdict.refuse))
      this.push(wire.server.ackUpTo(this.number))
    }
  }

  close(): void {
    this.readyState = 3
    queueMicrotask(() => this.onclose?.({ code: 1000, reason: '' } as CloseEvent))
  }
}

const opened: Replica[] = []
const network = { online: true }
afterEach(async () => {
  for (const replica of opened.splice(0)) await replica.close()
  network.online = true
})

async function replicaOn(server: FakeServer, name = `inspection/${Math.random()}`): Promise<Replica> {
  network.online = true
  const replica = new Replica({
    name,
    db: new LocalDb(`test-${name}`),
    endpoint: () => ({ url: 'ws://test/sync', token: 't' }),
    openSocket: () => server.open(),
    persist: () => ({ whenSynced: Promise.resolve(), destroy: async () => undefined }),
    drop: async () => undefined,
    online: () => network.online,
    events: new EventTarget(),
    onUnauthenticated: () => undefined,
  })
  opened.push(replica)
  await replica.open()
  return replica
}

async function settle(replica: Replica): Promise<void> {
  for (let i = 0; i < 50; i += 1) {
    await replica.flush()
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function check(code: string, result: string, note?: string): Intent {
  return { op: 'check', department: 'zjj', check: code, result, ...(note && { note }), by: 'inspector', at: '2026-03-02T09:00:00+08:00' }
}

describe('Replica', () => {
  it('sends each edit, and an ack settles it', async () => {
    const server = new FakeServer()
    const replica = await replicaOn(server)
    replica.connect()
    await settle(replica)
    replica.record(check('a', 'pass'))
    expect(replica.state.pending).toBe(1)
    await settle(replica)
    expect(replica.state.pending).toBe(0)
    expect(server.result('a')).toMatchObject({ result: 'pass' })
    expect(replica.state.lastSyncAt).not.toBeNull()
  })

  it('refuses at once what the layout refuses, with the reason', async () => {
    const replica = await replicaOn(new FakeServer())
    expect(() => replica.record(check('a', 'excellent'))).toThrow(/只能选/)
    expect(replica.state.pending).toBe(0)
  })

  it('keeps offline edits, sends them when connected', async () => {
    const server = new FakeServer()
    const replica = await replicaOn(server)
    replica.connect()
    await settle(replica)
    network.online = false
    replica['ws']?.close()
    await settle(replica)
    replica.record(check('a', 'fail', '离线记录'))
    await settle(replica)
    expect(server.result('a')).not.toMatchObject({ result: 'fail' })
    network.online = true
    replica.connect()
    await settle(replica)
    expect(server.result('a')).toMatchObject({ result: 'fail', note: '离线记录' })
    expect(replica.state.pending).toBe(0)
  })

  it('after a refusal takes the server state, keeps refused edits with their reason, later edits go through', async () => {
    const server = new FakeServer()
    const replica = await replicaOn(server)
    replica.connect()
    await settle(replica)
    replica.record(check('b', 'fail', '已同步'))
    await settle(replica)
    const clientBefore = replica.doc.clientID
    // offline: two edits; the server refuses the first, and the second (the same client's
    // next clock, so depending on it) with the same reason, as the contract says
    network.online = false
    replica['ws']?.close()
    await settle(replica)
    replica.record(check('a', 'pass', '被拒'))
    replica.record(check('b', 'pass', '依赖被拒的'))
    let first = true
    server.judge = () => {
      if (first) {
        first = false
        return { refuse: '结论已签署, 不能再改' }
      }
      return 'ack'
    }
    network.online = true
    replica.connect()
    await settle(replica)
    expect(replica.state.resets).toBe(1)
    expect(replica.doc.clientID).not.toBe(clientBefore)
    expect(replica.state.refused.map((row) => [row.intent.op === 'check' && row.intent.check, row.reason])).toEqual([
      ['a', '结论已签署, 不能再改'],
      ['b', '结论已签署, 不能再改'],
    ])
    expect(replica.state.pending).toBe(0)
    expect(server.result('a')).not.toMatchObject({ note: '被拒' })
    expect(server.result('b')).toMatchObject({ result: 'fail', note: '已同步' })
    // the replica is the server's state again (the refused edits are gone from it) ...
    const json = (replica.doc.getMap('departments').toJSON() as Record<string, { checks: Record<string, unknown> }>).zjj?.checks
    expect(json?.a).not.toMatchObject({ note: '被拒' })
    expect(json?.b).toMatchObject({ result: 'fail', note: '已同步' })
    // ... and later edits go through
    replica.record(check('a', 'not_applicable'))
    await settle(replica)
    expect(server.result('a')).toMatchObject({ result: 'not_applicable' })
    expect(replica.state.refused).toHaveLength(2)
  })

  it('a later edit goes through once the replica is reset after a refusal', async () => {
    const server = new FakeServer()
    const replica = await replicaOn(server)
    replica.connect()
    await settle(replica)
    // the refused edit goes out and is refused; one recorded before its answer arrives is
    // pending, made by the same client: refused too. One recorded during the reset is kept.
    server.judge = () => ({ refuse: '无权修改' })
    replica.record(check('a', 'pass'))
    await settle(replica)
    server.judge = () => 'ack'
    expect(replica.state.refused).toHaveLength(1)
    replica.record(check('b', 'rectify'))
    await settle(replica)
    expect(server.result('b')).toMatchObject({ result: 'rectify' })
  })

  it('answers "held" with a sync step 2 against the server state vector', async () => {
    const server = new FakeServer()
    const replica = await replicaOn(server)
    replica.connect()
    await settle(replica)
    let held = true
    server.judge = () => {
      if (held) {
        held = false
        return { hold: true }
      }
      return 'ack'
    }
    replica.record(check('a', 'pass'))
    await settle(replica)
    expect(server.result('a')).toMatchObject({ result: 'pass' })
    expect(replica.state.pending).toBe(0)
  })

  it('says it is saving from the moment of an edit until the edit is in the tablet\'s storage', async () => {
    const replica = await replicaOn(new FakeServer(), 'inspection/saving')
    replica.connect()
    await settle(replica)
    network.online = false // offline: no ack starts a write of its own
    replica['ws']?.close()
    await settle(replica)
    expect(replica.state.saving).toBe(0)
    replica.record(check('a', 'pass'))
    expect(replica.state.saving).toBe(1) // a page closed now would lose the edit: the browser asks first
    await replica.flush()
    expect(replica.state.saving).toBe(0)
    expect(await replica['options'].db.intents.where('doc').equals('inspection/saving').count()).toBe(1)
  })

  it('keeps the log across a reload (a new replica on the same database)', async () => {
    const server = new FakeServer()
    const name = 'inspection/reload'
    const first = await replicaOn(server, name)
    first.connect()
    await settle(first)
    network.online = false
    first['ws']?.close()
    await settle(first)
    first.record(check('a', 'rectify'))
    await first.flush()
    await first.close()
    opened.splice(opened.indexOf(first), 1)
    const second = await replicaOn(server, name)
    expect(second.state.pending).toBe(1)
    network.online = true
    second.connect()
    await settle(second)
    expect(server.result('a')).toMatchObject({ result: 'rectify' })
    expect(second.state.pending).toBe(0)
  })
})
