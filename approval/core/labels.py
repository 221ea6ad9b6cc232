"""The Chinese labels people see for each state and kind.

Keyed by (enum, member): different enums share values, such as "city".
"""

from storage.enums import (
    Decision,
    DepartmentLevel,
    MaterialStatus,
    ObjectKind,
    ProjectStatus,
    ProjectType,
    RegionKind,
    Role,
    StageStatus,
    TaskStatus,
    UploadStatus,
)

LABELS: dict[tuple[type, object], str] = {
    (ProjectStatus, ProjectStatus.ACTIVE): "办理中",
    (ProjectStatus, ProjectStatus.COMPLETED): "已办结",
    (StageStatus, StageStatus.NOT_STARTED): "未受理",
    (StageStatus, StageStatus.IN_REVIEW): "审批中",
    (StageStatus, StageStatus.SUSPENDED): "已中止",
    (StageStatus, StageStatus.COMPLETED): "已办结",
    (TaskStatus, TaskStatus.PENDING): "待审查",
    (TaskStatus, TaskStatus.SUPPLEMENT_REQUESTED): "待补正",
    (TaskStatus, TaskStatus.DECIDED): "已决定",
    (Decision, Decision.APPROVED): "准予许可",
    (Decision, Decision.APPROVED_WITH_CONDITIONS): "附条件准予",
    (Decision, Decision.SUPPLEMENT_REQUIRED): "需补正材料",
    (Decision, Decision.REJECTED): "不予许可",
    (MaterialStatus, MaterialStatus.SUBMITTED): "已提交",
    (MaterialStatus, MaterialStatus.ACCEPTED): "已收取",
    (MaterialStatus, MaterialStatus.REJECTED): "已退回",
    (MaterialStatus, MaterialStatus.COMMITTED): "容缺承诺",
    (ProjectType, ProjectType.APPROVAL): "审批",
    (ProjectType, ProjectType.VERIFICATION): "核准",
    (ProjectType, ProjectType.FILING): "备案",
    (RegionKind, RegionKind.CITY): "市",
    (RegionKind, RegionKind.DISTRICT): "区",
    (RegionKind, RegionKind.COUNTY): "县(市)",
    (RegionKind, RegionKind.DEVELOPMENT_ZONE): "开发区",
    (RegionKind, RegionKind.PARK): "园区",
    (DepartmentLevel, DepartmentLevel.CITY): "市级",
    (DepartmentLevel, DepartmentLevel.DISTRICT): "区县级",
    (Role, Role.WINDOW_CLERK): "综合受理窗口",
    (Role, Role.REVIEWER): "审批人员",
    (Role, Role.INSPECTOR): "踏勘/验收人员",
    (Role, Role.AGENT): "代办员",
    (Role, Role.SUPERVISOR): "中心管理办",
    (Role, Role.APPLICANT): "申请人",
    (ObjectKind, ObjectKind.PHOTO): "现场照片",
    (ObjectKind, ObjectKind.MATERIAL): "材料文件",
    (UploadStatus, UploadStatus.PENDING): "待上传",
    (UploadStatus, UploadStatus.CONFIRMED): "已上传",
}


def label(value: object) -> str:
    return LABELS[(type(value), value)]
