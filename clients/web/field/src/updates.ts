// A new version of the app (a new service worker) waits until the person agrees or no edit is
// open: the data lives in IndexedDB, apart from the app shell's caches, so an update never
// drops offline work, and it never reloads under someone typing.
import { ref } from 'vue'
import { Workbox } from 'workbox-window'

export const updateReady = ref(false)
let workbox: Workbox | null = null

function editing(): boolean {
  const active = document.activeElement
  return active instanceof HTMLInputElement || active instanceof HTMLTextAreaElement
}

export function applyUpdate(): void {
  if (!workbox) return
  workbox.addEventListener('controlling', () => location.reload())
  workbox.messageSkipWaiting()
}

export function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator) || import.meta.env.DEV) return
  workbox = new Workbox('/field/sw.js', { scope: '/field/' })
  workbox.addEventListener('waiting', () => {
    updateReady.value = true
    // on the list screen with nothing being typed, take the new version at once
    if (location.pathname === '/field/' && !editing()) applyUpdate()
  })
  void workbox.register()
}
