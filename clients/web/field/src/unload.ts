// A page closed or reloaded while an edit is on its way into the tablet's storage could lose
// it (the browser aborts the IndexedDB writes of a page that goes away), so the browser asks
// first. A note still being typed is saved before the question: its field loses focus.
import { keepingPhotos } from './photos'
import { openReplicas } from './workspace'

/** Whether anything recorded on this page is not yet in the tablet's storage. */
export function unsavedWork(): boolean {
  return keepingPhotos() || openReplicas.value.some((replica) => replica.state.saving > 0)
}

export function guardUnload(target: Window): void {
  target.addEventListener('beforeunload', (event) => {
    const active = target.document.activeElement
    if (active instanceof HTMLElement) active.blur() // fires the field's change: its edit is recorded
    if (!unsavedWork()) return
    event.preventDefault()
    event.returnValue = '' // older browsers ask only when this is set
  })
}
