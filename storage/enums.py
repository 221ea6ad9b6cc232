"""The vocabulary every room shares: the states and kinds stored in the tables."""

from enum import StrEnum


class RegionKind(StrEnum):
    CITY = "city"
    DISTRICT = "district"
    COUNTY = "county"
    DEVELOPMENT_ZONE = "development_zone"
    PARK = "park"


class DepartmentLevel(StrEnum):
    CITY = "city"
    DISTRICT = "district"


class ProjectType(StrEnum):
    """The TT part of the national project code: how the investment is authorised."""

    APPROVAL = "APPROVAL"  # 审批, 01
    VERIFICATION = "VERIFICATION"  # 核准, 02
    FILING = "FILING"  # 备案, 03


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"


class StageStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_REVIEW = "in_review"
    SUSPENDED = "suspended"  # 中止: a 容缺 commitment passed its due date
    COMPLETED = "completed"


class Decision(StrEnum):
    """A department's decision on one task, from least to most severe."""

    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    SUPPLEMENT_REQUIRED = "supplement_required"
    REJECTED = "rejected"


class TaskStatus(StrEnum):
    PENDING = "pending"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    DECIDED = "decided"


class MaterialStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    COMMITTED = "committed"  # 容缺: missing, with a signed commitment and a due date


class Role(StrEnum):
    WINDOW_CLERK = "window_clerk"
    REVIEWER = "reviewer"
    INSPECTOR = "inspector"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    APPLICANT = "applicant"


class DayKind(StrEnum):
    HOLIDAY = "holiday"
    WORKDAY = "workday"


class InspectionKind(StrEnum):
    SITE_CHECK = "site_check"  # 现场踏勘
    JOINT_ACCEPTANCE = "joint_acceptance"  # 联合验收


class InspectionStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    PASSED = "passed"
    RECTIFICATION_REQUIRED = "rectification_required"
    CANCELLED = "cancelled"


class CheckOutcome(StrEnum):
    PASS = "pass"  # 合格
    FAIL = "fail"  # 不合格
    NOT_APPLICABLE = "not_applicable"  # 不适用
    RECTIFY = "rectify"  # 需整改


class Conclusion(StrEnum):
    PASS = "pass"
    FAIL = "fail"


class WarningLevel(StrEnum):
    YELLOW = "yellow"  # near the deadline
    RED = "red"  # overdue


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"


class ObjectKind(StrEnum):
    PHOTO = "photo"  # 现场照片: evidence for a check
    MATERIAL = "material"  # 申报材料文件


class UploadStatus(StrEnum):
    PENDING = "pending"  # a ticket was given; the bytes are not confirmed yet
    CONFIRMED = "confirmed"  # checked and kept as a stored object


class SetupStatus(StrEnum):
    """A company setup (企业设立) from acceptance at the window to the certificates issued."""

    IN_REVIEW = "in_review"  # the departments review in parallel (同步审批)
    READY = "ready"  # every permit approved: the window issues them together (统一发证)
    ISSUED = "issued"  # the certificates were handed over
    REFUSED = "refused"  # a department refused; the window tells the applicant
    # The fan-in said 需补正 (no refusal, a department asked for more): the setup waits for the
    # applicant's material; the window re-accepts it and those departments review again.
    SUPPLEMENT_REQUIRED = "supplement_required"
