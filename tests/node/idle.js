// The Yjs side of tests/test_yjs_interop.py's keep-alive test: y-websocket's own client
// (WebsocketProvider, unmodified) connects to OneWindow's /sync, syncs, sets its presence and
// then does nothing for <seconds>.
//
// Usage: node idle.js <ws://host:port/sync> <document> <token> <seconds>
//
// y-websocket closes a socket on which nothing arrived for 30 s and reconnects; a server that
// behaves like the reference server (it sends a client's awareness back to it, and the client
// renews its awareness every 15 s) never lets that happen. Prints one JSON line at the end:
//   {"event": "idle", "closes": N, "connects": N, "seconds": S}
// and exits 0; exits 1 with the reason on stderr if it never synced.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [serverUrl, docName, token, secondsText] = process.argv.slice(2)
const seconds = Number(secondsText)
if (!serverUrl || !docName || !token || !(seconds > 0)) {
  console.error('usage: node idle.js <ws://host:port/sync> <document> <token> <seconds>')
  process.exit(2)
}

const doc = new Y.Doc()
const provider = new WebsocketProvider(serverUrl, docName, doc, {
  WebSocketPolyfill: WebSocket,
  protocols: ['onewindow.v1', `onewindow.bearer.${token}`]
})
let closes = 0
let connects = 0
provider.on('connection-close', () => { closes += 1 })
provider.on('status', ({ status }) => { if (status === 'connected') connects += 1 })
provider.awareness.setLocalStateField('user', { name: '空闲的平板' })

const started = Date.now()
const syncTimer = setTimeout(() => {
  process.stderr.write('idle.js: no first sync within 15 s\n')
  process.exit(1)
}, 15000)
provider.once('sync', () => {
  clearTimeout(syncTimer)
  setTimeout(() => {
    const event = { event: 'idle', closes, connects, seconds: (Date.now() - started) / 1000 }
    process.stdout.write(JSON.stringify(event) + '\n')
    provider.destroy()
    process.exit(0)
  }, seconds * 1000)
})
