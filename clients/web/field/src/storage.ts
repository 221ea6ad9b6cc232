// Durable storage: the browser may clear IndexedDB of a site it deems unused (Safari after 7
// days) unless the site's storage is persistent. Asked at the first save; its state is shown.
import { ref } from 'vue'

export const persisted = ref<boolean | null>(null)

/** Asks for persistent storage (``ask``) or only reads whether it is. */
export async function requestPersistence(ask = true): Promise<boolean | null> {
  if (!navigator.storage?.persisted) return null
  persisted.value = await navigator.storage.persisted()
  if (!persisted.value && ask && navigator.storage.persist) persisted.value = await navigator.storage.persist()
  return persisted.value
}
