// The Yjs side of tests/test_yjs_interop.py: a yjs@13 document synced by y-websocket's own
// client (WebsocketProvider) with OneWindow's /sync endpoint.
//
// Usage: node interop.js <ws://host:port/sync> <document> <token> <expected.json>
//
// It connects (the token as a subprotocol, as browsers do; no ?ack=1: a plain Yjs client),
// sets presence with a Chinese name, records its check under the key "node" of the map "m",
// then waits until every key of
// <expected.json> (a JSON object) has arrived with that value, and until the Python side's
// presence name arrives. Events are printed as JSON lines on stdout:
//   {"event": "synced"}                         the first sync finished
//   {"event": "recorded", "value": ...}        the Node check is set
//   {"event": "done", "map": {...}, "presence": [...]}   everything expected arrived
// The Python side answers on stdin with one line "bye" when it has seen the Node check; the
// script then disconnects and exits 0. Anything unexpected (a timeout, an error logged by
// y-websocket, a refusal, a close) exits 1 with the reason on stderr.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { createInterface } from 'node:readline'

const TIMEOUT_MS = 15000
const NODE_CHECK = '节点检查：消防通道畅通，灭火器在有效期内 ✅'
const NODE_NAME = '检查员张三'

const [serverUrl, docName, token, expectedJson] = process.argv.slice(2)
if (!serverUrl || !docName || !token || !expectedJson) {
  console.error('usage: node interop.js <ws://host:port/sync> <document> <token> <expected.json>')
  process.exit(2)
}
const expected = JSON.parse(expectedJson)
const expectedPresence = expected.presence
delete expected.presence

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')
let provider = null
const fail = (reason) => {
  process.stderr.write(`interop.js failed: ${reason}\n`)
  if (provider) provider.destroy()
  process.exit(1)
}

// y-websocket reports messages it cannot read through console.error: any of them fails the run.
const logged = []
const originalError = console.error
console.error = (...args) => {
  logged.push(args.map(String).join(' '))
  originalError(...args)
}

const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms; logged: ${JSON.stringify(logged)}`), TIMEOUT_MS)

const doc = new Y.Doc()
const m = doc.getMap('m')
provider = new WebsocketProvider(serverUrl, docName, doc, {
  WebSocketPolyfill: WebSocket,
  protocols: ['onewindow.v1', `onewindow.bearer.${token}`],
  maxBackoffTime: 200
})
provider.on('connection-close', (event) => {
  if (!finished) fail(`the server closed the connection: ${event ? `${event.code} ${event.reason}` : 'no event'}`)
})
provider.on('connection-error', (event) => {
  if (!finished) fail(`the websocket failed: ${event && event.message ? event.message : event}`)
})
provider.awareness.setLocalStateField('user', { name: NODE_NAME })

let finished = false
let recorded = false

const presenceNames = () =>
  [...provider.awareness.getStates().entries()]
    .filter(([clientId]) => clientId !== doc.clientID)
    .map(([, state]) => state && state.user && state.user.name)
    .filter(Boolean)

const check = () => {
  if (finished || !recorded) return
  if (logged.length) fail(`y-websocket logged errors: ${JSON.stringify(logged)}`)
  const current = m.toJSON()
  for (const [key, value] of Object.entries(expected)) {
    if (current[key] !== value) return
  }
  if (expectedPresence && !presenceNames().includes(expectedPresence)) return
  finished = true
  emit({ event: 'done', map: current, presence: presenceNames() })
}

provider.on('sync', (synced) => {
  if (!synced || recorded) return
  emit({ event: 'synced' })
  m.set('node', NODE_CHECK)
  recorded = true
  emit({ event: 'recorded', value: NODE_CHECK })
  check()
})
m.observe(check)
provider.awareness.on('change', check)

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'bye') return
  if (!finished) fail('told to stop before everything expected arrived')
  clearTimeout(timer)
  provider.destroy()
  process.exit(0)
})
