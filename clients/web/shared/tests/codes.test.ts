// The credit code check agrees with approval/core/codes.py (these codes were made by its
// credit_code_with_check), and every error code of the API has a Chinese label.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { creditCheckCharacter, creditCodeProblem } from '../codes'
import { ERROR_LABELS, errorParts } from '../labels'
import { ApiError } from '../graphql'

const MADE_BY_THE_SERVER = [
  '91371400MA3C4K7L25',
  '91371400MA3D8P5X6X',
  '913714001678912K3J',
  '91371400MA3C123455',
  '91110000100000000R',
]

describe('credit codes', () => {
  it('accepts the codes the server made, in any case and with spaces around', () => {
    for (const code of MADE_BY_THE_SERVER) {
      expect(creditCodeProblem(code)).toBeNull()
      expect(creditCodeProblem(` ${code.toLowerCase()} `)).toBeNull()
      expect(creditCheckCharacter(code.slice(0, 17))).toBe(code[17])
    }
  })

  it('names a wrong check character and the right one', () => {
    const problem = creditCodeProblem('91371400MA3C4K7L2X')
    expect(problem).toContain('"5"')
    expect(problem).toContain('"X"')
  })

  it('says what is wrong while typing, and nothing while a good prefix is still short', () => {
    expect(creditCodeProblem('913714', false)).toBeNull()
    expect(creditCodeProblem('913714', true)).toContain('18 位')
    expect(creditCodeProblem('91O', false)).toContain('第 3 位')
    expect(creditCodeProblem('91AB1400MA', false)).toContain('第 3-8 位')
    expect(creditCodeProblem('91371400MA3C4K7L250', false)).toContain('18 位')
    expect(creditCodeProblem('', false)).toBeNull()
    expect(creditCodeProblem('', true)).not.toBeNull()
  })
})

describe('error labels', () => {
  it('has a Chinese label for every ErrorCode of the schema', () => {
    const sdl = readFileSync(new URL('../../../../schema/schema.graphql', import.meta.url), 'utf8')
    const block = /enum ErrorCode \{([^}]*)\}/.exec(sdl)?.[1] ?? ''
    const codes = block.split(/\s+/).filter(Boolean)
    expect(codes.length).toBeGreaterThan(10)
    expect(codes.filter((code) => !(code in ERROR_LABELS))).toEqual([])
  })

  it('puts the label and the field in the title and keeps the server words as detail', () => {
    const parts = errorParts(new ApiError('refused', 'Credit code check character…', 'INVALID_CREDIT_CODE', 'creditCode'))
    expect(parts.title).toBe('统一社会信用代码有误')
    expect(errorParts(new ApiError('refused', 'must be positive', 'INVALID_INPUT', 'landArea')).title).toBe(
      '输入有误 (用地面积)',
    )
    expect(parts.detail).toContain('Credit code')
    expect(errorParts(new ApiError('offline', '网络不可用, 请稍后再试')).title).toBe('网络不可用, 请稍后再试')
  })
})
