// What a refusal means, in Chinese. The server's reasons (approval/fieldwork/documents.py,
// approval/fieldwork/policy.py) are written for developers and logs, in English; the person
// holding the tablet reads this sentence first and the server's words as the detail.

const EXPLAINED: readonly (readonly [RegExp, string])[] = [
  [/signed conclusion cannot be changed/, '该部门的结论已经签署, 不能再修改'],
  [/uploaded for another inspection/, '这张照片属于别的检查, 请为本项重新拍照'],
  [/holds \d+; at most \d+/, '此项的照片已达上限, 这张没有保存'],
  [/characters; at most \d+ are kept/, '文字太长, 没有保存'],
  [/belongs to department/, '只能填写本部门的检查内容'],
  [/read-only for you|may not write|only an assigned inspector may/, '您对这份记录只有查看权限 (未被指派为检查人员)'],
  [/no such check|unknown check|no such department|no such section/, '检查表已变更, 此项不在本次检查中'],
  [/must be (one of|a number|between|true or false|a finite number|a string|a photo id)|ISO date|measurement needs a name/, '填写的内容不符合规定的格式或范围'],
  [/container|nothing may be written|unknown key|client id|must be a map|must be the list/, '记录的格式不被服务器接受, 请更新应用后重试'],
]

/** One sentence in Chinese for a refusal's reason; the server's own words stay the detail. */
export function explainRefusal(reason: string | undefined): string {
  for (const [pattern, sentence] of EXPLAINED) if (reason && pattern.test(reason)) return sentence
  return '服务器没有接受这条记录'
}
