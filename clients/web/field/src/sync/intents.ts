// Edits as the person meant them ("intents"), kept in an app-level log until the server
// acknowledges them. An intent is applied to the local Y.Doc at once; after a refusal the
// document is rebuilt from the server's state and the still-pending intents are applied again
// (sync contract, sync/protocol.py), so what a person recorded is never silently lost.
import * as Y from 'yjs'
import { LAYOUT, fieldProblem, measurementProblem, photosProblem, validItemKey, type ItemKind } from '@shared/layout-rules'

export type Intent =
  | {
      readonly op: 'check'
      readonly department: string
      readonly check: string
      readonly result?: string
      readonly note?: string
      readonly measured?: Readonly<Record<string, number>>
      /** Where the tablet was (WGS 84 degrees, accuracy in metres), when it knew. */
      readonly position?: { readonly lat: number; readonly lng: number; readonly accuracy: number }
      readonly by: string
      readonly at: string
    }
  | { readonly op: 'photo'; readonly department: string; readonly check: string; readonly photoId: string }
  | {
      readonly op: 'rectification'
      readonly department: string
      readonly key: string
      readonly values: Readonly<Record<string, string | boolean>>
    }
  | { readonly op: 'conclusion'; readonly department: string; readonly values: Readonly<Record<string, string>> }
  | { readonly op: 'entry'; readonly key: string; readonly values: Readonly<Record<string, string | boolean>> }

/** An edit the layout refuses, with the reason in Chinese (the server would say the same). */
export class IntentProblem extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'IntentProblem'
  }
}

function problemsOf(item: ItemKind, values: Readonly<Record<string, unknown>>): void {
  for (const [key, value] of Object.entries(values)) {
    const problem = fieldProblem(item, key, value)
    if (problem) throw new IntentProblem(`${key}: ${problem}`)
  }
}

/** Refuses, with the reason, what the server's layout rules would refuse. */
export function validate(intent: Intent): void {
  switch (intent.op) {
    case 'check': {
      const { result, note, by, at, position } = intent
      problemsOf('check', { ...(result !== undefined && { result }), ...(note !== undefined && { note }), ...position, by, at })
      for (const [name, value] of Object.entries(intent.measured ?? {})) {
        const problem = measurementProblem(name, value)
        if (problem) throw new IntentProblem(`${name}: ${problem}`)
      }
      return
    }
    case 'photo': {
      const problem = photosProblem([intent.photoId])
      if (problem) throw new IntentProblem(problem)
      return
    }
    case 'rectification':
    case 'entry': {
      if (!validItemKey(intent.key)) throw new IntentProblem(`编号 ${intent.key} 不合规`)
      const kind = intent.op === 'entry' ? 'entry' : 'rectification'
      problemsOf(kind, intent.values)
      if (kind === 'entry' && intent.values.kind === undefined) throw new IntentProblem('kind: 必须填写')
      return
    }
    case 'conclusion':
      problemsOf('conclusion', intent.values)
      return
  }
}

function section(doc: Y.Doc, department: string): Y.Map<unknown> {
  const value = doc.getMap(LAYOUT.roots.inspection).get(department)
  if (!(value instanceof Y.Map)) throw new IntentProblem(`文档中没有部门 ${department} 的部分, 请联网同步后再记录`)
  return value
}

function child(parent: Y.Map<unknown>, key: string, what: string): Y.Map<unknown> {
  const value = parent.get(key)
  if (!(value instanceof Y.Map)) throw new IntentProblem(`文档中没有${what}, 请联网同步后再记录`)
  return value
}

/** Sets ``values`` on the UUID-keyed map at ``key`` of ``items``, creating it the first time. */
function upsert(items: Y.Map<unknown>, key: string, values: Readonly<Record<string, unknown>>): void {
  const existing = items.get(key)
  if (existing instanceof Y.Map) {
    for (const [name, value] of Object.entries(values)) existing.set(name, value)
  } else {
    items.set(key, new Y.Map(Object.entries(values)))
  }
}

/** Applies one intent to the document (the caller wraps it in a transaction). Idempotent:
 * applying it again sets the same values. */
export function applyIntent(doc: Y.Doc, intent: Intent): void {
  switch (intent.op) {
    case 'check': {
      const item = child(child(section(doc, intent.department), 'checks', '检查项'), intent.check, `检查项 ${intent.check}`)
      if (intent.result !== undefined) item.set('result', intent.result)
      if (intent.note !== undefined) item.set('note', intent.note)
      const entries = Object.entries(intent.measured ?? {})
      if (entries.length) {
        const measured = child(item, 'measured', '实测值容器')
        for (const [name, value] of entries) measured.set(name, value)
      }
      for (const [key, value] of Object.entries(intent.position ?? {})) item.set(key, value)
      item.set('by', intent.by)
      item.set('at', intent.at)
      return
    }
    case 'photo': {
      const item = child(child(section(doc, intent.department), 'checks', '检查项'), intent.check, `检查项 ${intent.check}`)
      const photos = item.get('photos')
      if (!(photos instanceof Y.Array)) throw new IntentProblem('文档中没有照片列表, 请联网同步后再记录')
      if (!photos.toArray().includes(intent.photoId)) photos.push([intent.photoId])
      return
    }
    case 'rectification': {
      upsert(child(section(doc, intent.department), 'rectifications', '整改事项'), intent.key, intent.values)
      return
    }
    case 'conclusion': {
      const conclusion = child(section(doc, intent.department), 'conclusion', '结论')
      for (const [key, value] of Object.entries(intent.values)) conclusion.set(key, value)
      return
    }
    case 'entry': {
      upsert(doc.getMap(LAYOUT.roots.agency), intent.key, intent.values)
      return
    }
  }
}

/** A short Chinese description of an intent, for the pending and refused lists. */
export function describe(intent: Intent, labelOfCheck: (department: string, check: string) => string = (_d, c) => c): string {
  switch (intent.op) {
    case 'check':
      return `检查项「${labelOfCheck(intent.department, intent.check)}」`
    case 'photo':
      return `检查项「${labelOfCheck(intent.department, intent.check)}」的照片`
    case 'rectification':
      return `整改事项「${String(intent.values.description ?? '').slice(0, 20)}」`
    case 'conclusion':
      return '部门结论'
    case 'entry':
      return `代办记录「${String(intent.values.text ?? '').slice(0, 20)}」`
  }
}
