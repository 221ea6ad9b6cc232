// The unified social credit code (统一社会信用代码, GB 32100-2015) checked as it is typed, with
// the same rule as approval/core/codes.py (the server checks again; a test keeps the two in
// step on the same examples).
export const CREDIT_CHARSET = '0123456789ABCDEFGHJKLMNPQRTUWXY'
const WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]

/** The check character for the first 17 characters (null when one is not allowed). */
export function creditCheckCharacter(first17: string): string | null {
  let total = 0
  for (let i = 0; i < 17; i++) {
    const value = CREDIT_CHARSET.indexOf(first17[i] ?? '')
    if (value < 0) return null
    total += (WEIGHTS[i] ?? 0) * value
  }
  return CREDIT_CHARSET[(31 - (total % 31)) % 31] ?? null
}

/** What is wrong with a (possibly partly typed) credit code, in Chinese; null when it is
 * fine so far (`complete`: it must be whole). */
export function creditCodeProblem(raw: string, complete = true): string | null {
  const code = raw.trim().toUpperCase()
  if (!code) return complete ? '请填写统一社会信用代码' : null
  for (const [index, ch] of [...code].entries()) {
    if (!CREDIT_CHARSET.includes(ch)) {
      return `第 ${index + 1} 位 "${ch}" 不是信用代码可用的字符 (数字及大写字母, 不含 I、O、Z、S、V)`
    }
  }
  if (code.length > 18) return `信用代码应为 18 位, 现有 ${code.length} 位`
  if (code.length >= 8 && !/^\d{6}$/.test(code.slice(2, 8))) {
    return '第 3-8 位应为 6 位数字的登记管理机关行政区划码'
  }
  if (code.length < 18) return complete ? `信用代码应为 18 位, 现有 ${code.length} 位` : null
  const expected = creditCheckCharacter(code.slice(0, 17))
  if (expected !== code[17]) {
    return `校验位应为 "${expected}", 而不是 "${code[17]}": 请对照营业执照核对`
  }
  return null
}
