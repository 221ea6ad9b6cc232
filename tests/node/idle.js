// The Yjs side of tests/test_yjs_interop.py's keep-alive test: y-websocket's own client
// (WebsocketProvider, unmodified) connects to OneWindow's /sync, syncs, sets its presence and
// then does nothing for <seconds>.
//
// Usage: node idle.js <ws://host:port/sync> <document> <token> <seconds> [<warp>]
//
// y-websocket closes a socket on which nothing arrived for 30 s and reconnects; a server that
// behaves like the reference server (it sends a client's awareness back to it, and the client
// renews its awareness every 15 s) never lets that happen. Prints one JSON line at the end:
//   {"event": "idle", "closes": N, "connects": N, "renewals": N, "seconds": S}
// (renewals: how often the client renewed its own presence, every 15 s of its time)
// and exits 0; exits 1 with the reason on stderr if it never synced.
//
// <warp> (default 1) makes time in this process run that many times faster: Date.now and the
// timers that yjs, y-protocols and y-websocket set (their 30 s and 15 s are constants), so
// <seconds> of the client's time pass in <seconds>/<warp> of real time. <seconds> and the
// printed "seconds" are the client's time; the 15 s wait for the first sync is real time.

const [serverUrl, docName, token, secondsText, warpText] = process.argv.slice(2)
const seconds = Number(secondsText)
const warp = Number(warpText ?? 1)
if (!serverUrl || !docName || !token || !(seconds > 0) || !(warp >= 1)) {
  console.error('usage: node idle.js <ws://host:port/sync> <document> <token> <seconds> [<warp>]')
  process.exit(2)
}

const realSetTimeout = globalThis.setTimeout
if (warp !== 1) {
  // before the libraries load: lib0/time keeps a reference to Date.now when it is imported
  const realNow = Date.now
  const origin = realNow()
  Date.now = () => origin + (realNow() - origin) * warp
  const realSetInterval = globalThis.setInterval
  globalThis.setTimeout = (callback, ms = 0, ...args) => realSetTimeout(callback, ms / warp, ...args)
  globalThis.setInterval = (callback, ms = 0, ...args) =>
    realSetInterval(callback, ms / warp, ...args)
}
const Y = await import('yjs')
const { WebsocketProvider } = await import('y-websocket')
const { default: WebSocket } = await import('ws')

const doc = new Y.Doc()
const provider = new WebsocketProvider(serverUrl, docName, doc, {
  WebSocketPolyfill: WebSocket,
  protocols: ['onewindow.v1', `onewindow.bearer.${token}`]
})
let closes = 0
let connects = 0
let renewals = 0
provider.on('connection-close', () => { closes += 1 })
provider.awareness.on('update', ({ updated }, origin) => {
  if (origin === 'local' && updated.includes(doc.clientID)) renewals += 1
})
provider.on('status', ({ status }) => { if (status === 'connected') connects += 1 })
provider.awareness.setLocalStateField('user', { name: '空闲的平板' })

const started = Date.now()
const syncTimer = realSetTimeout(() => {
  process.stderr.write('idle.js: no first sync within 15 s\n')
  process.exit(1)
}, 15000)
provider.once('sync', () => {
  clearTimeout(syncTimer)
  setTimeout(() => {
    const seconds = (Date.now() - started) / 1000
    const event = { event: 'idle', closes, connects, renewals, seconds }
    process.stdout.write(JSON.stringify(event) + '\n')
    provider.destroy()
    process.exit(0)
  }, seconds * 1000)
})
