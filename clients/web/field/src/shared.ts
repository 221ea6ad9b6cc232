// Structural sharing of plain JSON data: the parts of ``next`` equal to ``previous`` are
// ``previous``'s own objects, so that Vue skips what did not change.
export function shared<T>(previous: T, next: T): T {
  if (previous === next) return previous
  if (typeof previous !== 'object' || typeof next !== 'object' || previous === null || next === null) return next
  if (Array.isArray(previous) !== Array.isArray(next)) return next
  if (Array.isArray(previous) && Array.isArray(next)) {
    if (previous.length !== next.length) return next
    const items = next.map((item, i) => shared(previous[i], item))
    return (items.every((item, i) => item === previous[i]) ? previous : items) as T
  }
  const before = previous as Record<string, unknown>
  const after = next as Record<string, unknown>
  const keys = Object.keys(after)
  let same = keys.length === Object.keys(before).length
  const out: Record<string, unknown> = {}
  for (const key of keys) {
    out[key] = shared(before[key], after[key])
    if (out[key] !== before[key]) same = false
  }
  return (same ? previous : out) as T
}
