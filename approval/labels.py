"""The Chinese labels people see for each state and kind."""

from storage.enums import (
    Decision,
    DepartmentLevel,
    MaterialStatus,
    ProjectStatus,
    ProjectType,
    RegionKind,
    Role,
    StageStatus,
    TaskStatus,
)

_LABELS: dict[object, str] = {
    ProjectStatus.ACTIVE: "办理中",
    ProjectStatus.COMPLETED: "已办结",
    StageStatus.NOT_STARTED: "未受理",
    StageStatus.IN_REVIEW: "审批中",
    StageStatus.COMPLETED: "已办结",
    TaskStatus.PENDING: "待审查",
    TaskStatus.SUPPLEMENT_REQUESTED: "待补正",
    TaskStatus.DECIDED: "已决定",
    Decision.APPROVED: "准予许可",
    Decision.APPROVED_WITH_CONDITIONS: "附条件准予",
    Decision.SUPPLEMENT_REQUIRED: "需补正材料",
    Decision.REJECTED: "不予许可",
    MaterialStatus.SUBMITTED: "已提交",
    MaterialStatus.ACCEPTED: "已收取",
    MaterialStatus.REJECTED: "已退回",
    MaterialStatus.COMMITTED: "容缺承诺",
    ProjectType.APPROVAL: "审批",
    ProjectType.VERIFICATION: "核准",
    ProjectType.FILING: "备案",
    RegionKind.CITY: "市",
    RegionKind.DISTRICT: "区",
    RegionKind.COUNTY: "县(市)",
    RegionKind.DEVELOPMENT_ZONE: "开发区",
    RegionKind.PARK: "园区",
    DepartmentLevel.CITY: "市级",
    DepartmentLevel.DISTRICT: "区县级",
    Role.WINDOW_CLERK: "综合受理窗口",
    Role.REVIEWER: "审批人员",
    Role.INSPECTOR: "踏勘/验收人员",
    Role.AGENT: "代办员",
    Role.SUPERVISOR: "中心管理办",
    Role.APPLICANT: "申请人",
}


# Different enums share values ("city"): look labels up by (enum type, value).
LABELS = {(type(key), key): text for key, text in _LABELS.items()}


def label(value: object) -> str:
    return LABELS[(type(value), value)]
