"""The vocabulary every room shares: the states and kinds stored in the tables."""

from enum import Enum


class RegionKind(str, Enum):
    CITY = "city"
    DISTRICT = "district"
    COUNTY = "county"
    DEVELOPMENT_ZONE = "development_zone"
    PARK = "park"


class DepartmentLevel(str, Enum):
    CITY = "city"
    DISTRICT = "district"


class ProjectType(str, Enum):
    """The TT part of the national project code: how the investment is authorised."""

    APPROVAL = "APPROVAL"  # 审批, 01
    VERIFICATION = "VERIFICATION"  # 核准, 02
    FILING = "FILING"  # 备案, 03


class ProjectStatus(str, Enum):
    ACTIVE = "active"
    COMPLETED = "completed"


class StageStatus(str, Enum):
    NOT_STARTED = "not_started"
    IN_REVIEW = "in_review"
    COMPLETED = "completed"


class Decision(str, Enum):
    """A department's decision on one task, from least to most severe."""

    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    SUPPLEMENT_REQUIRED = "supplement_required"
    REJECTED = "rejected"


class TaskStatus(str, Enum):
    PENDING = "pending"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    DECIDED = "decided"


class MaterialStatus(str, Enum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    COMMITTED = "committed"  # 容缺: missing, with a signed commitment and a due date


class Role(str, Enum):
    WINDOW_CLERK = "window_clerk"
    REVIEWER = "reviewer"
    INSPECTOR = "inspector"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    APPLICANT = "applicant"


class DayKind(str, Enum):
    HOLIDAY = "holiday"
    WORKDAY = "workday"
