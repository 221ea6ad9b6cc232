// The layout rules of the field documents, read from layout-rules.json, which is generated
// from approval/fieldwork/documents.py (the rules the server validates with; `make layout-rules`). The
// forms refuse here, with the reason, what the server would refuse; nothing is typed twice.
import rules from './layout-rules.json'

export type ItemKind = 'check' | 'rectification' | 'conclusion' | 'entry'
export type VocabularyName = 'checkResult' | 'conclusion' | 'entryKind'

interface FieldRule {
  readonly type: 'text' | 'choice' | 'datetime' | 'date' | 'boolean' | 'number' | 'measurements' | 'photos'
  readonly min?: number
  readonly max?: number
  readonly nameMax?: number
  readonly vocabulary?: string
  readonly required?: boolean
}

export interface VocabularyEntry {
  readonly value: string
  readonly label: string
}

export const LAYOUT = rules
export const LIMITS = rules.limits
const FIELDS = rules.fields as Record<ItemKind, Record<string, FieldRule>>
const PHOTO_ID = new RegExp(rules.photoId)

export function vocabulary(name: VocabularyName): readonly VocabularyEntry[] {
  return rules.vocabularies[name]
}

export function labelOf(name: VocabularyName, value: string | null | undefined): string {
  return vocabulary(name).find((entry) => entry.value === value)?.label ?? ''
}

/** Characters as Python counts them (code points, not UTF-16 units). */
export function characters(text: string): number {
  let count = 0
  for (const _ of text) count += 1
  return count
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?)?$/

function realDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate()
}

function validDate(text: string): boolean {
  const m = DATE.exec(text)
  return m !== null && realDate(Number(m[1]), Number(m[2]), Number(m[3]))
}

function validDateTime(text: string): boolean {
  const m = DATETIME.exec(text)
  if (m === null || !realDate(Number(m[1]), Number(m[2]), Number(m[3]))) return false
  const [hour, minute, second] = [m[4], m[5], m[6]].map((v) => Number(v ?? 0))
  return (hour ?? 0) < 24 && (minute ?? 0) < 60 && (second ?? 0) < 60
}

/** Why a value may not be written at `key` of an item, in Chinese; null when it may. */
export function fieldProblem(item: ItemKind, key: string, value: unknown): string | null {
  const rule = FIELDS[item][key]
  if (!rule) return `"${key}" 不是此项的字段`
  if (value === null || value === undefined) {
    return rule.required ? '必须填写' : null
  }
  switch (rule.type) {
    case 'text': {
      if (typeof value !== 'string') return '必须是文字'
      const count = characters(value)
      const max = rule.max ?? LIMITS.maxText
      return count > max ? `最多 ${max} 字, 现有 ${count} 字` : null
    }
    case 'choice': {
      const allowed = vocabulary(rule.vocabulary as VocabularyName)
      if (typeof value === 'string' && allowed.some((entry) => entry.value === value)) return null
      return `只能选 ${allowed.map((entry) => entry.label).join('、')}`
    }
    case 'datetime':
      return typeof value === 'string' && (value === '' || validDateTime(value)) ? null : '时间格式不对'
    case 'date':
      return typeof value === 'string' && (value === '' || validDate(value)) ? null : '日期格式不对 (如 2026-03-20)'
    case 'boolean':
      return typeof value === 'boolean' ? null : '必须是 是/否'
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return '必须是数字'
      const [min, max] = [rule.min ?? -Infinity, rule.max ?? Infinity]
      return value < min || value > max ? `必须在 ${min} 到 ${max} 之间` : null
    }
    default:
      return null
  }
}

/** Why a measurement may not be kept under `name`; null when it may. */
export function measurementProblem(name: string, value: unknown): string | null {
  if (name.trim() === '' || characters(name) > LIMITS.maxName) {
    return `测点名称需 1 到 ${LIMITS.maxName} 字`
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) return '实测值必须是数字'
  return null
}

/** Why a list of photo ids may not be a check's photos; null when it may. */
export function photosProblem(photos: readonly unknown[]): string | null {
  if (photos.length > LIMITS.maxPhotos) return `每项最多 ${LIMITS.maxPhotos} 张照片`
  const bad = photos.find((id) => typeof id !== 'string' || !PHOTO_ID.test(id))
  return bad === undefined ? null : `照片编号 ${String(bad)} 不合规`
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Whether `key` may name a rectification or an agency entry (a canonical UUID). */
export function validItemKey(key: string): boolean {
  return UUID.test(key)
}
