import { describe, expect, it } from 'vitest'
import { explainRefusal } from '../src/refusals'

// Reasons as the server words them (approval/fieldwork/documents.py and policy.py).
describe('explainRefusal', () => {
  it.each([
    ['departments/zjj/conclusion was signed by 张三 as pass; a signed conclusion cannot be changed', '已经签署'],
    ['departments/zjj/checks/alarm/photos: photo 0123456789ab... was uploaded for another inspection or project; attach a photo taken for this check', '别的检查'],
    ['departments/zjj/checks/alarm/photos holds 101; at most 100', '照片已达上限'],
    ['departments/zjj/checks/alarm/note has 4001 characters; at most 4000 are kept', '文字太长'],
    ['departments/rfb belongs to department rfb; an inspector of zjj may write only departments/zjj', '本部门'],
    ['this inspection document is read-only for you (role supervisor); your change was not kept', '查看权限'],
    ['departments/zjj/checks: unknown check(s) [\'x\']; the checks come from the department\'s checklist', '检查表已变更'],
    ['departments/zjj/checks/alarm/lat must be between -90 and 90; found 91', '格式或范围'],
    ['departments/zjj/checks/alarm/result is \'ok\'; it must be one of pass (合格), fail (不合格)', '格式或范围'],
    ['departments/zjj/checks/alarm has unknown key(s) \'colour\'; allowed: result, note', '更新应用'],
  ])('explains %s', (reason, words) => {
    expect(explainRefusal(reason)).toContain(words)
  })

  it('says plainly when it does not know the reason', () => {
    expect(explainRefusal('something new')).toBe('服务器没有接受这条记录')
  })
})
