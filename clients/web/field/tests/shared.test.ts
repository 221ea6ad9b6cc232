import { describe, expect, it } from 'vitest'
import { shared } from '../src/shared'

describe('shared', () => {
  it('keeps the unchanged parts and replaces the changed ones', () => {
    const before = { zjj: { checks: { a: { result: 'pass', photos: ['x'] }, b: { result: 'fail' } } }, rfb: { checks: {} } }
    const after = JSON.parse(JSON.stringify(before)) as typeof before
    after.zjj.checks.b.result = 'rectify'
    const out = shared(before, after)
    expect(out).toEqual(after)
    expect(out).not.toBe(before)
    expect(out.zjj.checks.a).toBe(before.zjj.checks.a)
    expect(out.zjj.checks.a.photos).toBe(before.zjj.checks.a.photos)
    expect(out.rfb).toBe(before.rfb)
    expect(out.zjj.checks.b).not.toBe(before.zjj.checks.b)
  })

  it('gives the previous value back when nothing changed, and follows added and removed keys', () => {
    const before = { a: [1, 2], b: { c: 'd' } }
    expect(shared(before, JSON.parse(JSON.stringify(before)))).toBe(before)
    const added = shared(before, { a: [1, 2], b: { c: 'd' }, e: 1 } as typeof before)
    expect(added).toEqual({ a: [1, 2], b: { c: 'd' }, e: 1 })
    expect(added.a).toBe(before.a)
    const shorter = shared(before, { a: [1], b: { c: 'd' } })
    expect(shorter.a).toEqual([1])
    expect(shorter.b).toBe(before.b)
  })
})
