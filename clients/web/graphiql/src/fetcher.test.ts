import { describe, expect, it } from 'vitest'
import { socketUrl } from '@shared/endpoints'
import { currentOperationName, graphiqlDefaults, isSubscription } from './fetcher'

describe('the GraphiQL page', () => {
  it('tells subscriptions from queries and mutations', () => {
    expect(isSubscription('subscription { supervisionEvents { id } }', null)).toBe(true)
    expect(isSubscription('query A { viewer { id } } subscription B { supervisionEvents { id } }', 'A')).toBe(false)
    expect(isSubscription('{ viewer { id } }', null)).toBe(false)
    expect(isSubscription('not graphql', null)).toBe(false)
  })

  it('drops a stale operation name of a single-operation document', () => {
    expect(currentOperationName('query Me { viewer { id } }', 'Login')).toBe('Me')
    expect(currentOperationName('{ viewer { id } }', 'Login')).toBeNull()
    expect(currentOperationName('query A { a } query B { b }', 'C')).toBe('C') // the server says which
    expect(currentOperationName('query A { a } query B { b }', 'B')).toBe('B')
  })

  it('fills the Authorization header from a live console session only', () => {
    const now = Date.parse('2026-03-02T01:00:00Z')
    const live = { getItem: () => JSON.stringify({ token: 'abc', expiresAt: '2026-03-02T12:00:00Z' }) }
    const expired = { getItem: () => JSON.stringify({ token: 'abc', expiresAt: '2026-03-01T12:00:00Z' }) }
    expect(JSON.parse(graphiqlDefaults(live, now).headers)).toEqual({ Authorization: 'Bearer abc' })
    expect(graphiqlDefaults(expired, now).headers).toBe('')
    expect(graphiqlDefaults({ getItem: () => '{broken' }, now).headers).toBe('')
    expect(graphiqlDefaults({ getItem: () => null }, now).query).toContain('mutation Login')
  })

  it('speaks to the same host, over wss under https', () => {
    expect(socketUrl({ protocol: 'https:', host: 'yct.example.cn' })).toBe('wss://yct.example.cn/graphql')
    expect(socketUrl({ protocol: 'http:', host: '127.0.0.1:8000' })).toBe('ws://127.0.0.1:8000/graphql')
  })
})
