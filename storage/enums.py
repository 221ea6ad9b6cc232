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
