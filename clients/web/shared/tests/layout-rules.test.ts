// The form's validation agrees with approval/fieldwork/documents.py on every example the server's own
// reader judged (layout-rules.examples.json, generated with layout-rules.json).
import { describe, expect, it } from 'vitest'
import examplesFile from '../layout-rules.examples.json'
import {
  characters,
  fieldProblem,
  labelOf,
  measurementProblem,
  photosProblem,
  validItemKey,
  type ItemKind,
} from '../layout-rules'

type Encoded = unknown

function decode(value: Encoded): unknown {
  if (Array.isArray(value)) return value.map(decode)
  if (value !== null && typeof value === 'object') {
    const v = value as Record<string, unknown>
    if (typeof v.$number === 'string') return Number(v.$number)
    if (typeof v.$repeat === 'string') return v.$repeat.repeat(Number(v.times))
  }
  return value
}

interface Example {
  item: string
  key: Encoded
  value: Encoded
  valid: boolean
}

const examples = examplesFile.examples as Example[]

function judged(example: Example): boolean {
  const value = decode(example.value)
  const key = String(decode(example.key))
  switch (example.item) {
    case 'measurement':
      return measurementProblem(key, value) === null
    case 'photos':
      return photosProblem(value as unknown[]) === null
    case 'rectificationKey':
    case 'entryKey':
      return validItemKey(key)
    default:
      return fieldProblem(example.item as ItemKind, key, value) === null
  }
}

describe('layout rules', () => {
  it('has examples', () => {
    expect(examples.length).toBeGreaterThan(100)
  })

  it.each(examples.map((e, index) => [index, e.item, e.key, e] as const))(
    'example %i (%s %s) is judged as the server judges it',
    (_index, _item, _key, example) => {
      expect(judged(example)).toBe(example.valid)
    },
  )

  it('counts characters as Python does', () => {
    expect(characters('😀汉x')).toBe(3)
    expect('😀'.length).toBe(2)
  })

  it('labels the vocabularies in Chinese', () => {
    expect(labelOf('checkResult', 'pass')).toBe('合格')
    expect(labelOf('entryKind', 'todo')).toBe('待办')
    expect(fieldProblem('check', 'note', 'x'.repeat(4001))).toBe('最多 4000 字, 现有 4001 字')
  })
})
